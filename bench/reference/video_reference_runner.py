"""Reference side of bench/video_vs_reference.py: the upstream demo's recipe, run by the reference
environment's python.

Every frame: OpenCV decodes it, facenet-pytorch's MTCNN (min_face_size=40, post_process=False) finds the
faces, boxes with probability > 0.9 are cropped without margin, and hsemotion's recognizer classifies each
face on its own (``predict_emotions``), with the caller's weights (see ``_hsemotion_model.py``).

    python video_reference_runner.py VIDEO WEIGHTS.npz --frames 120
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _torchvision_shim
from _hsemotion_model import hsemotion_recognizer
from _serve import serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("video", type=Path)
    parser.add_argument("weights", type=Path)
    parser.add_argument("--frames", type=int, default=0, help="0: every frame")
    parser.add_argument("--model", default="enet_b0_8_best_vgaf")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    recognizer = hsemotion_recognizer(args.weights, args.model, args.threads)
    from facenet_pytorch import MTCNN

    detector = MTCNN(keep_all=False, post_process=False, min_face_size=40, device="cpu")

    def run(limit: int) -> dict[str, float]:
        _torchvision_shim.NMS_SECONDS[0] = 0.0
        capture = cv2.VideoCapture(str(args.video))
        frames = faces = 0
        while limit == 0 or frames < limit:
            ok, bgr = capture.read()
            if not ok:
                break
            frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            boxes, probabilities = detector.detect(frame, landmarks=False)
            if boxes is not None:
                for box in boxes[probabilities > 0.9]:
                    x1, y1, x2, y2 = (max(0, int(v)) for v in box[:4])
                    recognizer.predict_emotions(frame[y1:y2, x1:x2, :], logits=True)
                    faces += 1
            frames += 1
        capture.release()
        return {
            "frames": frames,
            "faces": faces,
            "nms_seconds": _torchvision_shim.NMS_SECONDS[0],
            "threads": torch.get_num_threads(),
        }

    serve(lambda: run(args.frames), warmup=lambda: run(3))


if __name__ == "__main__":
    main()
