"""Training recipes for JaSpeechLLM: `jaspeech train CONFIG.yaml` (see `recipes.train`).

`config` (recipe files, stages and what learns), `data` (corpus readers and mixing), `batches`
(collators), `dpo` (the DPO loss), `distributed` (what DDP/FSDP need at evaluation and save time),
`recipes` (the loop).
"""
