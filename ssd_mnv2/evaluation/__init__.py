"""Detector evaluation: the official WIDER FACE protocol, and VOC / COCO scoring of one's own face sets.

* :mod:`.driver`: ``evaluate_detector`` / ``evaluate_predictions`` (WIDER FACE, easy / medium / hard AP);
* :mod:`.faceset`: ``evaluate_faceset_detector`` / ``evaluate_faceset_predictions`` (VOC- or
  COCO-format face sets: AP50, AP50:95, best F1, recall by face size);
* :mod:`.wider_gt` (the official ``.mat`` ground truth), :mod:`.image_list` (which images),
  :mod:`.predictions` (the per-image ``x y w h score`` text files), :mod:`.wider_protocol`
  (the official AP), :mod:`.voc_metrics` (VOC matching and the all-point AP), :mod:`.coco_metrics`
  (pycocotools), :mod:`.report` (tables, JSON summaries), :mod:`.plots` (PR curves).
"""
