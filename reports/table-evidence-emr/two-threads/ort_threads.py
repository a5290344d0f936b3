# Times one ONNX model with ONNX Runtime (PyPI wheel) at THREADS intra-op threads, spinning on
# (1, the default) or off (0), and prints quantiles and a 0.01 ms histogram. Usage: python ort_threads.py THREADS [SPIN]
# with a.onnx in the current folder (any exported network: tunas-searcher export --run RUN --arch ARCH --onnx a.onnx).
import onnxruntime as ort, numpy as np, time, sys
threads=int(sys.argv[1]); spin=sys.argv[2] if len(sys.argv)>2 else '1'
o=ort.SessionOptions(); o.intra_op_num_threads=threads; o.inter_op_num_threads=1
o.add_session_config_entry('session.intra_op.allow_spinning', spin)
o.graph_optimization_level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s=ort.InferenceSession('a.onnx', o, providers=['CPUExecutionProvider'])
name=s.get_inputs()[0].name; shape=[d if isinstance(d,int) else 1 for d in s.get_inputs()[0].shape]
x=np.random.rand(*shape).astype(np.float32)
for _ in range(200): s.run(None,{name:x})
t=[]
for _ in range(3000):
    a=time.perf_counter(); s.run(None,{name:x}); t.append((time.perf_counter()-a)*1e3)
t=np.array(t)
h,e=np.histogram(t,bins=np.arange(0.05,0.25,0.01))
print(threads,'spin',spin,'p10 %.3f p50 %.3f p90 %.3f'%tuple(np.percentile(t,[10,50,90])))
print(' '.join('%.2f:%d'%(a,b) for a,b in zip(e,h) if b))
