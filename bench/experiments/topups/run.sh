#!/bin/bash
# usage (from this folder): ./run.sh script.sql [prep.sql]
# Clones bench_b1 (run bench_topups.py once first) into tp_scratch, adds 400,000 pending orders
# T1..T400000, applies prep.sql (a schema variant), runs pgbench 8 clients for 8 s.
psql -h 127.0.0.1 -U postgres -qc "drop database if exists tp_scratch" -c "create database tp_scratch template bench_b1" 2>/dev/null
psql -h 127.0.0.1 -U postgres tp_scratch -q -f setup.sql 2>&1 | grep -v NOTICE
[ -n "$2" ] && psql -h 127.0.0.1 -U postgres tp_scratch -q -f $2 2>&1 | grep -v NOTICE
psql -h 127.0.0.1 -U postgres tp_scratch -qc checkpoint
pgbench -h 127.0.0.1 -U postgres -n -M prepared -c 8 -j 2 -T 8 -f $1 tp_scratch 2>&1 | grep -E "^tps" | sed "s|^|$1 $2 |"
psql -h 127.0.0.1 -U postgres tp_scratch -Atc "select 'paid', count(*) from billing_topuporder where state='paid'"
