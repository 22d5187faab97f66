INSERT INTO tracehouse_db_endpoints_1m (Minute, ServiceName, DbSystem, Statement, Endpoint, Calls)
SELECT Minute, service, db_system, statement, endpoint, count()
FROM (/*DB_ENDPOINT_PAIRS*/)
GROUP BY Minute, service, db_system, statement, endpoint
