"""The model server: one model behind a dynamic batcher (`plane`), served by the API (`app`)."""
