#!/bin/bash
# Run once by the postgres image on the first start of an empty volume (/docker-entrypoint-initdb.d):
# one database per service (ORDERFLOW_PG_DATABASES from stack.env, owned by ORDERFLOW_PG_USER, the superuser),
# and replication connections from the compose network, which Debezium's pgoutput slots need.
set -euo pipefail

for db in ${ORDERFLOW_PG_DATABASES:-orders inventory payments shipping customers}; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -c "CREATE DATABASE \"$db\""
done

echo "host replication all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
