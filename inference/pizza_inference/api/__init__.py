"""HTTP layer: thin FastAPI routers over an `InferenceService` (model server or router)."""
