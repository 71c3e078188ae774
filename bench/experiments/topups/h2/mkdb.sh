#!/bin/bash
# usage: ./mkdb.sh DB [variant.sql ...]  -- like ../run.sh but into own DB name, no pgbench
DB=$1; shift
P="psql -h 127.0.0.1 -U postgres -X"
flock /tmp/bench.lock $P -qc "drop database if exists $DB" -c "create database $DB template bench_b1" 2>&1 | grep -v NOTICE
$P $DB -q -f ../setup.sql 2>&1 | grep -v NOTICE
for v in "$@"; do [ -f "$v" ] || v="../$v"; $P $DB -q -f $v 2>&1 | grep -v NOTICE; done
