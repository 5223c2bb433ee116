#!/usr/bin/env python3
"""Writes Tests/Fixtures/tokenizer/cases.json: reference encodings and decodings for WordPieceTokenizer.

The reference is the tokenizer transformers 5.24 builds for Salesforce/blip-image-captioning-large:
BertTokenizer (the `tokenizers`-backed one) over the bert-base-uncased vocab.txt with bos_token "[DEC]"
and additional special token "[ENC]" (ids 30522 and 30523). The legacy pure-Python BertTokenizerLegacy
is run too; every case where the two disagree is marked `"slowDiffers": true` and printed, and the
`tokenizers` answer is the expected one (it is what the checkpoint loads in transformers 5).

Decoding expectations pass clean_up_tokenization_spaces explicitly: transformers 5 defaults it to False,
the hub config was written with 4.x where it was True, and the Swift API defaults to True.

Usage: python3 scripts/reference/make_tokenizer_cases.py [path/to/vocab.txt] [out.json]
"""
import json
import os
import sys

import transformers
from transformers import BertTokenizer
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "Tests/Fixtures/vocab.txt")
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "Tests/Fixtures/tokenizer/cases.json")

SPECIAL = dict(bos_token="[DEC]", additional_special_tokens=["[ENC]"])
fast = BertTokenizer(vocab=BertTokenizerLegacy(VOCAB).vocab, **SPECIAL)
slow = BertTokenizerLegacy(VOCAB, **SPECIAL)
assert fast.convert_tokens_to_ids(["[DEC]", "[ENC]"]) == [30522, 30523], "vocab is not bert-base-uncased"

ENCODE = [
    ("empty", ""),
    ("spaces only", "   "),
    ("whitespace only", " \t\n\r \u3000\u00a0"),
    ("prompt", "a picture of"),
    ("prompt trailing space", "a picture of "),
    ("caption", "a woman sitting on the beach with her dog"),
    ("mixed case", "A PiCtUrE oF a CAT"),
    ("accents", "Café Déjà vu"),
    ("accents decomposed", "Cafe\u0301 De\u0301ja\u0300 vu"),
    ("more accents", "naïve façade résumé Ångström Øresund œuvre straße"),
    ("turkish dotted I", "İstanbul ıi"),
    ("greek final sigma", "ΟΔΟΣ Σοφία"),
    ("cyrillic", "Привет, мир!"),
    ("arabic", "مرحبا بالعالم"),
    ("hebrew with points", "שָׁלוֹם"),
    ("hindi", "नमस्ते दुनिया"),
    ("thai", "สวัสดีครับ"),
    ("korean", "안녕하세요 세계"),
    ("japanese kana", "猫が好き"),
    ("chinese", "我爱你"),
    ("cjk mixed", "猫が好き 我爱你"),
    ("cjk next to latin", "a猫b 2024年"),
    ("cjk compatibility ideograph", "\uf900\U0002f800"),
    ("cjk extension b", "\U00020000x"),
    ("cjk extension e edges", "a\U0002b81fb a\U0002b820b a\U0002b91fb a\U0002b920b a\U0002ceafb"),
    ("cjk block edges", "a\u9fffb a\u3400b a\ufaffb a\U0002fa1fb a\U0002fa20b a\U00030000b"),
    ("fullwidth", "ＡＢＣ１２３！"),
    ("punctuation run", "wow!!!...???"),
    ("punctuation mixed", "(a), [b]; {c}: <d> \"e\" `f` ~g^ |h| \\i/ @j# $k% &l* _m- +n="),
    ("unicode punctuation", "«quoted» — dash – “curly” ‘single’ …ellipsis ¿qué? ¡sí!"),
    ("symbols not punctuation", "€5 £3 ¥2 © ® ™ ° ± × ÷ §"),
    ("emoji", "a dog 🐶 on a 🏖️ beach"),
    ("emoji zwj", "family 👨‍👩‍👧 here"),
    ("emoji flags", "🇺🇸🇫🇷"),
    ("long word", "a" * 101),
    ("word of exactly 100", "b" * 100),
    ("long word then short", "x" * 150 + " cat"),
    ("long accented word", "é" * 101),
    ("long word split by punctuation", "a" * 60 + "-" + "a" * 60),
    ("numbers", "3.14159 1,000,000 2nd 42 007"),
    ("digits run", "12345678901234567890"),
    ("tabs newlines", "a\tpicture\nof\r\na cat"),
    ("control chars", "a\x00b\x01c\x7fd\u200be\ufeff\u200df\ufffd"),
    ("nel and line separator", "a\x85b\u2028c\u2029d"),
    ("private use and unassigned", "x\ue000y\U000f0000z\u0378"),
    ("lone combining mark", "\u0301a \u0301"),
    ("apostrophes", "it's don't I'm we've they're"),
    ("curly apostrophe", "it’s don’t"),
    ("special token literal DEC", "[DEC] literal"),
    ("special tokens glued", "x[DEC]y[ENC]z"),
    ("all special literals", "[PAD][UNK][CLS][SEP][MASK][DEC][ENC]"),
    ("lowercase special literal", "[dec] [cls] [unk]"),
    ("broken special literal", "[DEC [ENC] ] [ SEP]"),
    ("unused token literal", "[unused0] [unused99]"),
    ("hashes", "##s #hashtag ## a##b"),
    ("unknown word", "qwxzvbnm"),
    ("subwords", "unbelievably transformers tokenization"),
    ("url", "https://example.com/path?q=1&r=two#frag"),
    ("email", "someone@example.org"),
    ("markup", "<b>bold</b> &amp; <br/>"),
    ("math", "x^2 + y_1 = z≤3 ∑∫√∞"),
    ("repeated spaces", "a    picture     of"),
    ("leading trailing spaces", "   a picture of   "),
    ("surrogate-like and noncharacters", "a\ufffeb\uffffc"),
    ("variation selector", "❤️ ♥︎"),
    ("musical combining marks", "e\u0301\u0316\U0001d165"),
]

DECODE = [
    [],
    [30522],
    [30522, 1037, 3861, 1997, 102],
    [30522, 1037, 3861, 1997, 1037, 4937, 2006, 1037, 7792, 102],
    [30522, 1037, 3861, 1997, 2015, 1037, 3899, 102],  # ## piece after a prompt word
    [30522, 1037, 3861, 1997, 2015, 2015, 102],
    [2015],
    [2015, 1037],
    [101, 2015, 1037, 102],
    [1037, 2158, 1012],
    [2009, 1005, 1055, 1037, 3899, 1012],
    [2123, 1005, 1056, 2175, 999],
    [1045, 1005, 1049, 2182, 1010, 2017, 1005, 2310, 2042, 1029],
    [2027, 1005, 2128, 2182],
    [1037, 1005, 1038],
    [1037, 1010, 1010, 1012, 1012, 999, 1029],
    [0, 0, 30522, 1037, 102, 0, 0],
    [100, 1037, 100],
    [1037, 100, 2015],
    [103, 1037, 103],
    [30523, 1037, 30522, 1038],
    [101, 102, 0, 100, 103, 30522, 30523],
    [1, 2, 3, 1037],  # [unused*] tokens are not special
    [7668, 2139, 3900, 24728],
    [1037, 1011, 1038, 1006, 1039, 1007],
    [1037, 1000, 1038, 1000],
    [1016, 1012, 1015, 1018],
    [1037, 2003, 2025, 1050, 1005, 1056],
    [1037, 30524, 1038, 99999, 1039],  # out-of-range ids are dropped
    [1012, 1037],
    [1005, 1037, 1005],
]


def differs(a, b):
    return a != b


def main():
    encode, decode, notes = [], [], []
    for name, text in ENCODE:
        ids = fast(text, add_special_tokens=False).input_ids
        with_special = fast(text).input_ids
        slow_ids = slow(text, add_special_tokens=False).input_ids
        case = {"name": name, "text": text, "ids": ids, "idsWithSpecialTokens": with_special}
        if slow_ids != ids:
            case["slowDiffers"] = True
            notes.append(f"encode {name!r}: tokenizers {ids} vs legacy {slow_ids}")
        encode.append(case)
    for ids in DECODE:
        for skip in (True, False):
            for clean in (True, False):
                text = fast.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=clean)
                case = {"ids": ids, "skipSpecialTokens": skip, "cleanUpTokenizationSpaces": clean, "text": text}
                try:
                    slow_text = slow.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=clean)
                except Exception as error:  # the legacy tokenizer raises on out-of-range ids
                    slow_text = f"<{type(error).__name__}>"
                if slow_text != text:
                    case["slowDiffers"] = True
                    notes.append(f"decode {ids} skip={skip} clean={clean}: tokenizers {text!r} vs legacy {slow_text!r}")
                decode.append(case)
    out = {
        "transformers": transformers.__version__,
        "vocabularySize": len(fast),
        "specialIDs": {"pad": fast.pad_token_id, "unk": fast.unk_token_id, "cls": fast.cls_token_id,
                       "sep": fast.sep_token_id, "mask": fast.mask_token_id, "dec": fast.bos_token_id,
                       "enc": fast.convert_tokens_to_ids("[ENC]")},
        "encode": encode,
        "decode": decode,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=True, indent=1)
        f.write("\n")
    print(f"{len(encode)} encode cases, {len(decode)} decode cases -> {OUT}")
    for note in notes:
        print("slow/fast difference:", note)


if __name__ == "__main__":
    main()
