#pragma once
// The human output of yna-tool: aligned columns, one header line, and optional
// indented note lines under a row (the notifications of a timeline event). Cells wider
// than their column's limit are cut with "…". Buffers every row to size the columns.
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

namespace cli {

class table {
 public:
  enum class align { left, right };
  struct column {
    std::string title;
    align how = align::left;
    std::size_t max_width = 0;  // 0: no limit
  };

  explicit table(std::vector<column> columns);
  // One row; missing cells are empty, extra ones are dropped.
  void add(std::vector<std::string> cells);
  // A line printed under the last row, indented; not part of the column widths.
  void note(std::string line);
  std::size_t rows() const noexcept { return rows_; }
  void print(std::FILE* out) const;

 private:
  struct line {
    std::vector<std::string> cells;  // empty for a note
    std::string note;
  };
  std::vector<column> columns_;
  std::vector<line> lines_;
  std::size_t rows_ = 0;
};

// Display width of UTF-8 text (code points; the tool prints no wide characters).
std::size_t display_width(const std::string& s);

}  // namespace cli
