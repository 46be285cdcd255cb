"""Speech synthesis for the corpora: text preparation, speakers, TTS and ASR backends, round-trip scoring."""
