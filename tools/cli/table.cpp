#include "tools/cli/table.hpp"

#include <algorithm>

namespace cli {

std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

namespace {

// s cut to at most `width` code points, the last one "…" when something was cut.
std::string fit(const std::string& s, std::size_t width) {
  if (width == 0 || display_width(s) <= width) return s;
  std::string out;
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80 && ++n == width) break;
    out.push_back(s[i]);
  }
  return out + "…";
}

}  // namespace

table::table(std::vector<column> columns) : columns_(std::move(columns)) {}

void table::add(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  for (std::size_t i = 0; i < cells.size(); ++i) {
    for (char& c : cells[i])
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    cells[i] = fit(cells[i], columns_[i].max_width);
  }
  lines_.push_back(line{std::move(cells), {}});
  ++rows_;
}

void table::note(std::string line) { lines_.push_back({{}, std::move(line)}); }

void table::print(std::FILE* out) const {
  std::vector<std::size_t> width(columns_.size());
  for (std::size_t i = 0; i < columns_.size(); ++i) width[i] = display_width(columns_[i].title);
  for (const auto& l : lines_)
    for (std::size_t i = 0; i < l.cells.size(); ++i) width[i] = std::max(width[i], display_width(l.cells[i]));

  auto emit = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const std::size_t pad = width[i] - display_width(cells[i]);
      const bool last = i + 1 == cells.size();
      if (columns_[i].how == align::right) s.append(pad, ' ');
      s += cells[i];
      if (columns_[i].how == align::left && !last) s.append(pad, ' ');
      if (!last) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    s += '\n';
    std::fputs(s.c_str(), out);
  };
  std::vector<std::string> titles;
  for (const auto& c : columns_) titles.push_back(c.title);
  emit(titles);
  for (const auto& l : lines_) {
    if (l.cells.empty())
      std::fprintf(out, "    %s\n", l.note.c_str());
    else
      emit(l.cells);
  }
}

}  // namespace cli
