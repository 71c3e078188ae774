#!/bin/bash
# usage: ./pair.sh DB CLIENTS "PGOPTIONS_A" scriptA "PGOPTIONS_B" scriptB [T] [nockpt]
# runs A then B back-to-back under one flock (checkpoint before each unless nockpt);
# prints tps, latency, WAL bytes/txn and FPI/txn (pg_stat_wal deltas)
# A script not in this folder is taken from the parent one (bare.sql, credit.sql, …).
DB=$1; C=$2; OA=$3; A=$4; OB=$5; B=$6; T=${7:-8}; NOCK=$8
path() { [ -f "$1" ] && echo "$1" || echo "../$1"; }
PA=$(path "$A"); PB=$(path "$B")
J=$(( C < 2 ? 1 : 2 ))
flock /tmp/bench.lock bash -c "
P='psql -h 127.0.0.1 -U postgres -X -qAt $DB'
for x in A B; do
  if [ \$x = A ]; then O='$OA'; S='$A'; F='$PA'; else O='$OB'; S='$B'; F='$PB'; fi
  [ -z '$NOCK' ] && \$P -c checkpoint
  read b0 f0 <<< \$(\$P -F' ' -c 'select wal_bytes, wal_fpi from pg_stat_wal')
  out=\$(PGOPTIONS=\"\$O\" pgbench -h 127.0.0.1 -U postgres -n -M prepared -c $C -j $J -T $T -f \$F $DB 2>&1)
  read b1 f1 <<< \$(\$P -F' ' -c 'select wal_bytes, wal_fpi from pg_stat_wal')
  n=\$(echo \"\$out\" | sed -n 's/number of transactions actually processed: \([0-9]*\).*/\1/p')
  tps=\$(echo \"\$out\" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  lat=\$(echo \"\$out\" | sed -n 's/^latency average = \([0-9.]*\).*/\1/p')
  echo \"c=$C [\$O] \$S tps=\$tps lat_ms=\$lat n=\$n walB/tx=\$(( (b1-b0)/(n>0?n:1) )) fpi/tx=\$(echo \"scale=2;(\$f1-\$f0)/\$n\" | bc)\"
done"
