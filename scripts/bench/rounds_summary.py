"""Medians and ratios of a rounds.sh directory: per GEMM and in all, mnist-cl against
OpenBLAS for both register files, the step and its launches, and the epochs against
PyTorch's.

    /usr/bin/python3 scripts/bench/rounds_summary.py OUT
"""
import re,glob,statistics as st,sys
D=sys.argv[1]
def bench(f):
    t=open(f).read()
    g={}
    for m in re.finditer(r'^(Z1|Z2|Z3|dZ2|dW3|dZ1|dW2|dW1) \S+\s+.*?\s+([\d.]+)\s+[\d.]+\s+\d+%\s+\d+$',t,re.M):
        g[m.group(1)]=float(m.group(2))
    step=re.search(r'^\s+128\s+([\d.]+)',t,re.M)
    ep=re.search(r'^epoch\s+([\d.]+) s',t,re.M)
    rest=re.search(r'the rest\s+([\d.]+)',t)
    fused={}
    for m in re.finditer(r'^\d+\s+gemm_reg_tn\s+(\S+)\s+([\d.]+)',t,re.M): fused[m.group(1)]=float(m.group(2))
    return g,float(step.group(1)),float(ep.group(1)),float(rest.group(1)),fused
def numpy(f):
    t=open(f).read(); g={}
    names={'Z1=XW1':'Z1','Z2=Z1W2':'Z2','Z3=Z2W3':'Z3','dW3=Z2tD3':'dW3','dZ2=D3W3t':'dZ2','dW2=Z1tD2':'dW2','dZ1=D2W2t':'dZ1','dW1=XtD1':'dW1'}
    for m in re.finditer(r'^(\S+)_\d+x\d+x\d+\s+\S+\s+([\d.]+)',t,re.M):
        if m.group(1) in names: g[names[m.group(1)]]=float(m.group(2))
    return g
order=['Z1','Z2','Z3','dW3','dZ2','dW2','dZ1','dW1']
for tag,ntag in [('bench','numpy'),('bench-avx2','numpy-haswell')]:
    B=[bench(f) for f in sorted(glob.glob(f'{D}/{tag}-[0-9].txt'))]
    N=[numpy(f) for f in sorted(glob.glob(f'{D}/{ntag}-[0-9].txt'))]
    if not B or not N:
        continue
    print(tag, len(B), 'rounds')
    tb=[];tn=[]
    for k in order:
        b=[x[0][k] for x in B]; n=[x[k] for x in N]
        print(f"  {k:4} mnist-cl {st.median(b):7.1f} ({min(b):.0f}-{max(b):.0f})  openblas {st.median(n):7.1f} ({min(n):.0f}-{max(n):.0f})  ratio {st.median(n)/st.median(b):.2f}")
    sb=[sum(x[0].values()) for x in B]; sn=[sum(x.values()) for x in N]
    print(f"  sum  mnist-cl {st.median(sb):7.1f} ({min(sb):.0f}-{max(sb):.0f})  openblas {st.median(sn):7.1f} ({min(sn):.0f}-{max(sn):.0f})  ratio {st.median(sn)/st.median(sb):.2f}")
    print("  per-round ratios", [round(n/b,2) for n,b in zip(sn,sb)])
    print("  step128", st.median([x[1] for x in B]), "epoch", st.median([x[2] for x in B]), "rest", st.median([x[3] for x in B]), "fused", {k: st.median([x[4][k] for x in B]) for k in B[0][4]})
def epochs(f):
    t=open(f).read()
    return [float(x) for x in re.findall(r'^epoch\s+\d+\s.*?\s([\d.]+)s\s+\d+ img/s',t,re.M)]
def pyt(f):
    t=open(f).read()
    m=re.search(r'median epoch ([\d.]+) s',t); return float(m.group(1)) if m else None
med={}
for tag in ['train','train-avx2','train-affine','train-elastic']:
    e=[epochs(f) for f in sorted(glob.glob(f'{D}/{tag}-[0-9].txt'))]
    if e and e[0]: med[tag]=st.median([x for l in e for x in l])
    print(tag, e, 'median', med.get(tag))
for tag in ['pytorch','pytorch-haswell']:
    p=[x for x in (pyt(f) for f in sorted(glob.glob(f'{D}/{tag}-[0-9].txt'))) if x]
    if p: med[tag]=st.median(p)
    print(tag, p)
# The fma floor of an epoch: 430 steps of 309 MFLOP (mnist-cl plan) at the
# two-thread peak peak.sh measured, zmm where the CPU has it.
peak={}
try:
    for m in re.finditer(r'^(zmm|ymm) .*?2:\s+([\d.]+) GF',open(f'{D}/peak.txt').read(),re.M): peak[m.group(1)]=float(m.group(2))
except OSError:
    pass
for tag,ptag,reg in [('train','pytorch','zmm' if 'zmm' in peak else 'ymm'),('train-avx2','pytorch-haswell','ymm')]:
    if tag not in med: continue
    line=f"{tag}: epoch {med[tag]:.2f} s"
    if ptag in med: line+=f", PyTorch {med[ptag]:.2f} s: {med[ptag]/med[tag]:.1f}x faster ({med[tag]/med[ptag]:.2f} of it)"
    if reg in peak: line+=f"; fma floor {133/peak[reg]:.2f} s ({reg} {peak[reg]:.0f} GFLOP/s): {med[tag]/(133/peak[reg]):.2f}x it"
    print(line)
