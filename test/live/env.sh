# LIVE_* variables for the servers of test/live/compose.yaml:  . test/live/env.sh && npm run test:live
# Set only some of them to run the suite against those servers only.
export LIVE_POSTGRES_URL='postgres://postgres:Live-Pg-Pw-1@127.0.0.1:15432/postgres'
export LIVE_MYSQL_URL='mysql://root:Live-My-Pw-1@127.0.0.1:13306'
export LIVE_MYSQL84_URL='mysql://root:Live-My-Pw-1@127.0.0.1:13307'
export LIVE_MARIADB_URL='mariadb://root:Live-Ma-Pw-1@127.0.0.1:13308'
export LIVE_SQLSERVER_URL='sqlserver://sa:Live-Sql-Pw-1@127.0.0.1:11433'
export LIVE_ORACLE_URL='oracle://system:LiveOraPw1@127.0.0.1:11521/FREEPDB1'
export LIVE_MONGODB_URL='mongodb://root:Live-Mongo-Pw-1@127.0.0.1:27117'
export LIVE_MONGODB8_URL='mongodb://root:Live-Mongo-Pw-1@127.0.0.1:27118'
