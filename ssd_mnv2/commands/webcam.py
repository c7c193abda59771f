"""``ssd-mnv2 webcam``: live detection on a camera, a video file or a stream."""
from __future__ import annotations

from . import add_backend_args, add_model_args, backend_detector, display_overrides


def add_parser(sub) -> None:
    p = sub.add_parser("webcam", help="live detection on a camera / video file / stream ('q' quits)",
                       description="Boxes and an FPS overlay on every frame. Ends on 'q', Ctrl-C, --max-frames, "
                                   "the end of a file, or a camera that stops delivering frames.")
    add_model_args(p)
    p.add_argument("--source", default="0", help="camera index (0), video file or stream URL (rtsp://...)")
    p.add_argument("--no-display", action="store_true", help="no window (headless); use with --output")
    p.add_argument("--output", default=None, help="write the annotated video here (.mp4 or .avi)")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0: no limit)")
    p.add_argument("--blur", action="store_true", help="anonymise faces instead of drawing boxes")
    add_backend_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..inference import run_video

    args.overrides = display_overrides(args)  # threshold inside the graph: same boxes, faster NMS
    det = backend_detector(args)
    s = run_video(det, args.source, threshold=args.threshold, size=args.size, display=not args.no_display,
                  output=args.output, max_frames=args.max_frames, blur=args.blur)
    print(s.text())
    return 0
