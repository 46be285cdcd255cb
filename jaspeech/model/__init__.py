"""JaSpeechLLM model, recipes and evaluation (not built yet: issues 7 and 8).

The CER protocol they will use already lives in `jaspeech.cer`.
"""
