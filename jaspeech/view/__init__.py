"""`jaspeech view DIR`: a local, read-only web page to audit a built corpus folder.

Browse the kept rows of every config (paged and filtered on the server), listen to each spoken turn
next to its text and round-trip transcript (character diff, CER, kana-CER), compare DPO chosen and
rejected answers, read FSD50K captions with their licence and attribution, list rejected input rows by
reason (and hear them when the build kept their audio), and see the card's plots.

Needs the `view` extra (`pip install 'jaspeech[view]'`: starlette, uvicorn); the page itself is plain
HTML, JS and CSS served from this package, with nothing loaded from elsewhere.
"""
from jaspeech.view.queries import BadQuery, CorpusIndex, NotFound, RejectQuery, RowQuery, open_corpus

__all__ = ["BadQuery", "CorpusIndex", "NotFound", "RejectQuery", "RowQuery", "open_corpus"]
