import re, statistics, sys
# pair logs: consecutive lines (bare, candidate); variant name given by db+opts+script
dbname = {}
for f, dbs in [('batch1.log','h2b'),('batch2.log','h2c'),('batch3.log',None),('batch4.log',None)]:
    pass
rows=[]
for f in ['batch1.log','batch2.log','batch3.log','batch4.log']:
    L=[l.strip() for l in open(f) if l.startswith('c=')]
    for a,b in zip(L[0::2],L[1::2]):
        rows.append((f,a,b))
# batch3/4 db order per round
order3=['base','base','base:commit_delay','nocheck','alloff','alloff']
order4=['base','base','nocheck','nocheck','alloff']+[]
out={}
i3=i4=0
for f,a,b in rows:
    ta=float(re.search(r'tps=([\d.]+)',a).group(1)); tb=float(re.search(r'tps=([\d.]+)',b).group(1))
    c=re.match(r'c=(\d+)',b).group(1); opts=re.search(r'\[(.*?)\]',b).group(1); scr=b.split('] ')[1].split()[0]
    if f=='batch3.log': db=order3[i3%6]; i3+=1
    elif f=='batch4.log':
        db=order4[i4%5] if i4<15 else 'base'; i4+=1
    else: db='base'
    if scr=='bare_n.sql': db='base'
    aopts=re.search(r'\[(.*?)\]',a).group(1)
    key=f"c={c} {db} {scr} [{opts}] (bare [{aopts}])"
    out.setdefault(key,[]).append((ta,tb,tb/ta))
for k,v in sorted(out.items()):
    rs=[r for _,_,r in v]
    print(f"{k:90s} n={len(v)} median={statistics.median(rs):.3f} ratios={' '.join(f'{r:.3f}' for r in rs)} cand_tps={' '.join(f'{t:.0f}' for _,t,_ in v)} bare_tps={' '.join(f'{t:.0f}' for t,_,_ in v)}")
