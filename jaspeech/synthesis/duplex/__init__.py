"""Full-duplex dialogues: when each segment is spoken (`timeline`), the stereo mix and its checks (`mix`).

Both are pure functions of their inputs (the timeline's random draws come from seeds the caller derives from the
row), so a rebuild gives the same recording; `builders/duplex.py` runs the TTS, the ear and the aligner around them.
"""
