INSERT INTO tracehouse_span_links
    (Minute, TraceId, ParentSpanId, SpanId, Source, SourceKind, Target, TargetKind, Operation, DurationNs, IsError)
