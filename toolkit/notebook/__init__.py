"""What the notebooks need beyond the workflows: parameters from one spec, display helpers,
charts, the explorer widget, papermill execution with HTML export, batches and the secret scan
(see docs/architecture.md)."""
