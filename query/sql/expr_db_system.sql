if(SpanAttributes['db.system'] != '', SpanAttributes['db.system'], SpanAttributes['db.system.name'])
