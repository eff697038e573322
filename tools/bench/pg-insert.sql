-- pgbench script (tools/bench/run-all.sh): one INSERT per transaction, committed
-- synchronously (synchronous_commit=on, fsync=on). The payload is about the size of one
-- encoded /start event of the engine.
\set call random(1, 1000000000)
INSERT INTO events (call_id, payload) VALUES (:call, 'v=1;seq;time;start;0AEE1B58BAEEDA3EABA42B32EBB3DFE0;14250000001;MO;bench;dev-1;6f1c2a3b-1d2e-4f50-8a9b-0c1d2e3f4a5b;POST;/start;14250000001;14250000002;v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n;accepted;Initial;0000000000000000000000000000000000000000000000000000000000000000');
