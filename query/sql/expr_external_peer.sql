-- The peer a CLIENT span calls, for spans whose callee sends no spans: peer.service, else the server address.
multiIf(SpanAttributes['peer.service'] != '', SpanAttributes['peer.service'],
        SpanAttributes['server.address'] != '', SpanAttributes['server.address'],
        SpanAttributes['net.peer.name'] != '', SpanAttributes['net.peer.name'],
        SpanAttributes['http.host'] != '', SpanAttributes['http.host'],
        SpanAttributes['url.full'] != '', domain(SpanAttributes['url.full']),
        SpanAttributes['http.url'] != '', domain(SpanAttributes['http.url']),
        '')
