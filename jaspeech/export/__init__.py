"""Converters from a published build to other projects' training layouts. Each reads only the published layout
(`data/<config>/*.parquet` of complete shards, the `schema` features), never a builder's state; nothing in
`builders/` imports them."""
