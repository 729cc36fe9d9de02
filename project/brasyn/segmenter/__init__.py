"""The bundled tumour segmenter: an independent 2-D U-Net for BraSyn's downstream criterion.

Trained (`fit`) on complete cases' four real sequences only; run (`predict`) on real or completed sets.
"""

from brasyn.segmenter.model_file import default_segmenter_path, load_segmenter, save_segmenter
from brasyn.segmenter.predict import segment_folder, segment_volumes

__all__ = ["default_segmenter_path", "load_segmenter", "save_segmenter", "segment_folder", "segment_volumes"]
