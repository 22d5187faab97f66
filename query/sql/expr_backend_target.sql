-- The database or broker node a CLIENT/PRODUCER span calls; the same expression as in schemas/103_tracehouse_edges.sql.
if(SpanAttributes['db.system'] != '' OR SpanAttributes['db.system.name'] != '',
    concat(
        if(SpanAttributes['db.system'] != '', SpanAttributes['db.system'], SpanAttributes['db.system.name']),
        multiIf(SpanAttributes['db.name'] != '', concat('/', SpanAttributes['db.name']),
                SpanAttributes['db.namespace'] != '', concat('/', SpanAttributes['db.namespace']),
                SpanAttributes['server.address'] != '', concat('@', SpanAttributes['server.address']),
                SpanAttributes['net.peer.name'] != '', concat('@', SpanAttributes['net.peer.name']),
                SpanAttributes['peer.service'] != '', concat('@', SpanAttributes['peer.service']),
                '')),
    concat(SpanAttributes['messaging.system'],
        multiIf(SpanAttributes['messaging.destination.name'] != '', concat('/', SpanAttributes['messaging.destination.name']),
                SpanAttributes['messaging.destination'] != '', concat('/', SpanAttributes['messaging.destination']),
                '')))
