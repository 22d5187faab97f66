-- The newest snapshot of not-yet-finalized edges: its run, the watermark it extends, and when.
SELECT max(RunId) AS run_id, argMax(WatermarkMs, RunId) AS watermark_ms, count() AS rows
FROM tracehouse_edges_recent
