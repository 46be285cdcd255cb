"""Evaluation of JaSpeechLLM and baselines: `eval asr`, `eval cer`, `eval adu-bench`, `eval report`.

`predictions.py` scores a predictions file (the CER protocol itself lives in `jaspeech.cer`),
`eval_asr.py` transcribes a dataset, `adu_bench.py` answers and judges ADU-Bench (ja), `report.py` builds
the results table, and `checkpoint.py` is the one loader of a JaSpeechLLM checkpoint for inference.
Nothing here imports the training code; torch and transformers are imported only when a checkpoint loads.
"""
