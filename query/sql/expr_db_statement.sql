-- The normalized statement of a database CLIENT span; the same expression as in schemas/102_tracehouse_db_calls.sql.
multiIf(
    /*DB_SYSTEM*/ IN ('redis', 'memcached'),
    concat(upper(splitByWhitespace(if(SpanAttributes['db.statement'] != '', SpanAttributes['db.statement'],
        if(SpanAttributes['db.query.text'] != '', SpanAttributes['db.query.text'], SpanName)))[1]), ' ?'),
    if(SpanAttributes['db.statement'] != '', SpanAttributes['db.statement'], SpanAttributes['db.query.text']) != '',
    trimBoth(replaceRegexpAll(replaceRegexpAll(normalizeQuery(left(
        if(SpanAttributes['db.statement'] != '', SpanAttributes['db.statement'], SpanAttributes['db.query.text']),
        8192)), '\\(\\?\\.\\.\\)(\\s*,\\s*\\(\\?\\.\\.\\))*', '(?)'), '\\s+', ' ')),
    if(SpanAttributes['db.operation'] != '', SpanAttributes['db.operation'], SpanName))
