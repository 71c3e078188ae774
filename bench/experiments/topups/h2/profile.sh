#!/bin/bash
# usage: ./profile.sh DB CLIENTS script.sql tag [PGOPTIONS] [perf]
# one pgbench run (8 s) under flock with cheap in-server wait-event sampling (one session, 20 ms), optional perf -a
DB=$1; C=$2; S=$3; TAG=$4; O=$5; PERF=$6
J=$(( C < 2 ? 1 : 2 ))
PF=""; [ -n "$PERF" ] && PF="perf record -q -o /tmp/h2_perf_$TAG.data -a -g -F 499 --"
flock /tmp/bench.lock bash -c "
psql -h 127.0.0.1 -U postgres -X $DB -qc checkpoint
psql -h 127.0.0.1 -U postgres -X -qAt -c 'create temp table w(ev text)' -c \"DO \\\$\\\$ BEGIN PERFORM pg_sleep(0.5); FOR i IN 1..300 LOOP INSERT INTO w SELECT coalesce(wait_event_type,'CPU')||':'||coalesce(wait_event,'-') FROM pg_stat_activity WHERE datname='$DB' AND application_name='pgbench' AND state='active'; PERFORM pg_stat_clear_snapshot(); PERFORM pg_sleep(0.02); END LOOP; END \\\$\\\$\" -c 'select count(*), ev from w group by ev order by 1 desc limit 8' > /tmp/h2_wait_$TAG.txt &
SP=\$!
$PF env PGOPTIONS='$O' pgbench -h 127.0.0.1 -U postgres -n -M prepared -c $C -j $J -T 8 -f $S $DB 2>&1 | grep -E '^(tps|latency average)' | tr '\n' ' '; echo
wait \$SP
"
echo "wait events ($TAG): $(tr '\n' ' ' < /tmp/h2_wait_$TAG.txt)"
