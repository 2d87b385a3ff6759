"""GOT-OCR2 through mlx-vlm (``got``): a tiny programmed GOT (``tests/fixtures/tiny/got_ocr.py``); llama.cpp
has no GOT projector, so the fixture refuses that backend.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest
from PIL import Image

from tests.fixtures.tiny import TinyModel, Unsupported, got_ocr

pytestmark = pytest.mark.vlm

needs_mlx = pytest.mark.skipif(find_spec("mlx_vlm") is None, reason="mlx-vlm is not installed")


@pytest.fixture(scope="session")
def got_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return got_ocr.build("mlx", tmp_path_factory.mktemp("tiny-got-ocr"))


@needs_mlx
def test_got_ocr_mlx_prompt_and_answer(
    got_model: TinyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlx_vlm import load, stream_generate
    from mlx_vlm.models.got.processing_got import GotOcrProcessor
    from mlx_vlm.prompt_utils import apply_chat_template

    seen: list[list[int]] = []
    call = GotOcrProcessor.__call__

    def record(self, *args, **kwargs):
        out = call(self, *args, **kwargs)
        seen.append([int(i) for i in out["input_ids"][0].tolist()])
        return out

    monkeypatch.setattr(GotOcrProcessor, "__call__", record)
    model, processor = load(str(got_model.path))
    prompt = apply_chat_template(processor, model.config, got_ocr.PROMPT_MARKDOWN, num_images=1)
    image = tmp_path / "p.png"
    Image.new("RGB", (300, 200), "white").save(image)
    steps = list(stream_generate(model, processor, prompt, [str(image)], max_tokens=40, temperature=0.0))
    expected = processor.tokenizer.encode(got_model.prompt.format(prompt=got_ocr.PROMPT_MARKDOWN))
    assert seen == [expected]
    assert "".join(step.text for step in steps) == got_model.answer
    assert steps[-1].token == got_ocr.SPECIAL_IDS[got_ocr.END_OF_TURN]


def test_got_ocr_is_not_built_for_llama_cpp(tmp_path: Path) -> None:
    with pytest.raises(Unsupported, match="no GOT-OCR2 vision projector"):
        got_ocr.build("llama", tmp_path)
    assert not any(tmp_path.iterdir())
