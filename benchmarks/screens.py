"""Screen text: CER of the embedded engine on synthetic UI text at 12-13 px, Latin and mixed Chinese-Latin.

Screenshots differ from scans in one way that matters to the recogniser: the text is small (UI fonts at
12-13 px, x-height 6-7 px) and hinted, so the gap between two words is only 3-4 px and the recogniser
tends to drop it, as it does where a Chinese phrase meets a Latin word. This script renders a set of
screen-like images (light and dark themes; DejaVu Sans, Noto Sans and Noto Sans CJK from the Debian
``fonts-dejavu-core``, ``fonts-noto-core`` and ``fonts-noto-cjk`` packages) with their ground truth into a
folder in the layout ``textdrop bench`` reads (``<stem>.png`` beside ``<stem>.gt.txt``), then measures:

    .venv/bin/python benchmarks/screens.py --out /tmp/screens [--items 24] [--seed 1]
    .venv/bin/python -m textdrop bench /tmp/screens

The phrases are drawn at random from the word lists below (seeded), so the set is not a set of chosen
files; the figures are in ``docs/adr/019-screen-text-spacing.md``.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
CJK_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"

WORDS = [
    "open",
    "file",
    "edit",
    "view",
    "window",
    "help",
    "settings",
    "account",
    "profile",
    "sign",
    "out",
    "save",
    "changes",
    "cancel",
    "apply",
    "delete",
    "archive",
    "search",
    "results",
    "recent",
    "documents",
    "new",
    "folder",
    "upload",
    "download",
    "share",
    "link",
    "copy",
    "paste",
    "undo",
    "redo",
    "preview",
    "export",
    "import",
    "print",
    "close",
    "tab",
    "reload",
    "page",
    "history",
    "bookmarks",
    "extensions",
    "privacy",
    "security",
    "network",
    "display",
    "sound",
    "battery",
    "storage",
    "updates",
    "available",
    "install",
    "later",
    "restart",
    "now",
    "notifications",
    "messages",
    "inbox",
    "sent",
    "drafts",
    "spam",
    "calendar",
    "today",
    "tomorrow",
    "meeting",
    "with",
    "team",
    "at",
    "project",
    "status",
    "report",
    "review",
    "pending",
    "approved",
    "comments",
    "reply",
    "forward",
    "attach",
    "photo",
    "video",
    "music",
]
NAMES = tuple(
    [
        "Python",
        "GitHub",
        "Chrome",
        "Firefox",
        "Linux",
        "Windows",
        "macOS",
        "Slack",
        "Zoom",
        "Excel",
        "Word",
        "PDF",
        "Wi-Fi",
        "USB",
        "API",
        "JSON",
    ]
)
NUMBERS = ("3.12", "2024", "10", "42", "128", "v2.1", "8 GB", "5 min", "100%", "15:30")
CHINESE = [
    "打开",
    "设置",
    "文件",
    "编辑",
    "查看",
    "窗口",
    "帮助",
    "账户",
    "保存",
    "取消",
    "删除",
    "搜索",
    "最近",
    "文档",
    "上传",
    "下载",
    "分享",
    "复制",
    "粘贴",
    "预览",
    "导出",
    "导入",
    "打印",
    "关闭",
    "标签",
    "历史",
    "书签",
    "扩展",
    "隐私",
    "安全",
    "网络",
    "显示",
    "声音",
    "电池",
    "存储",
    "更新",
    "安装",
    "重启",
    "通知",
    "消息",
    "日历",
    "今天",
    "明天",
    "会议",
    "项目",
    "报告",
    "评论",
    "回复",
    "附件",
    "照片",
    "视频",
    "音乐",
    "使用",
    "运行",
    "连接",
    "版本",
]


def latin_phrase(rng: random.Random) -> str:
    """A UI label or sentence of 2-7 Latin words, sometimes with a product name or a number."""
    words = [rng.choice(WORDS) for _ in range(rng.randint(2, 7))]
    if rng.random() < 0.5:
        words.insert(rng.randint(0, len(words)), rng.choice(NAMES + NUMBERS))
    words[0] = words[0].capitalize()
    return " ".join(words)


def mixed_phrase(rng: random.Random) -> str:
    """Chinese words with Latin names or numbers between them, none between Chinese words; UI text has
    both styles at a Chinese-Latin boundary, so two lines in three put a space there and one does not."""
    parts: list[str] = []
    for _ in range(rng.randint(2, 4)):
        parts.append("".join(rng.choice(CHINESE) for _ in range(rng.randint(1, 3))))
        parts.append(rng.choice(NAMES + NUMBERS))
    if rng.random() < 0.5:
        parts.pop()
    return ("" if rng.random() < 1 / 3 else " ").join(parts)


def render(lines: list[tuple[str, str]], size: int, dark: bool, width: int = 640) -> Image.Image:
    """``(text, font path)`` lines drawn at ``size`` px, one per 1.8 × size rows, 12 px margins."""
    step = round(size * 1.8)
    image = Image.new("RGB", (width, 16 + step * len(lines)), (30, 30, 30) if dark else (250, 250, 250))
    draw = ImageDraw.Draw(image)
    ink = (230, 230, 230) if dark else (20, 20, 20)
    for row, (text, path) in enumerate(lines):
        draw.text((12, 8 + row * step), text, font=ImageFont.truetype(path, size), fill=ink)
    return image


def screens(items: int, seed: int) -> list[tuple[Image.Image, str]]:
    """``items`` screen images of 3-6 lines each with their ground truth (lines joined by newlines)."""
    rng = random.Random(seed)
    out = []
    for index in range(items):
        lines = []
        for _ in range(rng.randint(3, 6)):
            if index % 2:
                lines.append((mixed_phrase(rng), CJK_FONT))
            else:
                lines.append((latin_phrase(rng), rng.choice(LATIN_FONTS)))
        image = render(lines, size=12 + index % 4 // 2, dark=index % 3 == 0)
        out.append((image, "\n".join(text for text, _ in lines)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the set into")
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for index, (image, truth) in enumerate(screens(args.items, args.seed)):
        stem = f"screen_{index:02d}"
        image.save(args.out / f"{stem}.png")
        (args.out / f"{stem}.gt.txt").write_text(truth + "\n", encoding="utf-8")
    print(f"{args.items} screens written to {args.out}; measure with: textdrop bench {args.out}")


if __name__ == "__main__":
    sys.exit(main())
