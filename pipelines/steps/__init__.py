"""Steps: what a run does, free of Prefect (read, validate, encode, store, link, publish).

Each step takes a typed context (`steps.context`) and calls the layers below it (`ingest`,
`state`, `warehouse`, `linkage`); `pipelines.orchestration` wraps each in a thin Prefect
task and sequences them. Steps can be called and tested without Prefect.
"""
