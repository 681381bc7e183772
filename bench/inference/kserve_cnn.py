"""The same INT8 MicroPizzaNet behind KServe's Python model server (for the side-by-side run).

Runs in the separate `.venv-kserve` (kserve pins other versions). Serves the Open Inference
Protocol v2 `POST /v2/models/standard-cnn/infer` with the same tensor format as our server (one
BYTES input of base64 JPEG/PNG files, FP32 probabilities out), using the same checkpoint loader
and preprocessing (`pizza_inference.cnn`), one torch thread, one worker process.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import uuid
from pathlib import Path
from typing import Any

import kserve
import torch
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from PIL import Image
from pizza_inference.cnn.checkpoint import load_cnn
from pizza_inference.cnn.preprocess import images_to_tensor

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.net import free_port  # noqa: E402


class PizzaCNN(kserve.Model):  # type: ignore[misc]
    def __init__(self, name: str, checkpoint: str) -> None:
        super().__init__(name)
        self.checkpoint_path = checkpoint
        self.load()

    def load(self) -> bool:
        torch.set_num_threads(1)
        self.checkpoint = load_cnn(self.checkpoint_path, "int8")
        self.ready = True
        return self.ready

    def predict(
        self, payload: InferRequest, headers: dict[str, str] | None = None
    ) -> InferResponse:
        data: list[Any] = payload.inputs[0].data
        images = [Image.open(io.BytesIO(base64.b64decode(item))).convert("RGB") for item in data]
        batch = images_to_tensor(
            images, self.checkpoint.normalization, size=self.checkpoint.input_size
        )
        with torch.inference_mode():
            probabilities = torch.softmax(self.checkpoint.model(batch), dim=1).numpy()
        output = InferOutput(name="probabilities", shape=list(probabilities.shape), datatype="FP32")
        output.set_data_from_numpy(probabilities, binary_data=False)
        return InferResponse(
            model_name=self.name,
            infer_outputs=[output],
            response_id=payload.id or str(uuid.uuid4()),
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--http_port", type=int, default=8080)
    args = parser.parse_args()
    grpc_port = free_port()
    model = PizzaCNN("standard-cnn", args.checkpoint)
    kserve.ModelServer(
        http_port=args.http_port, grpc_port=grpc_port, enable_grpc=False, workers=1
    ).start([model])


if __name__ == "__main__":
    main()
