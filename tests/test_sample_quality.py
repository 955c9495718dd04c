"""The criteria of a sample: lines Python's parser accepts on their own, words the corpus uses."""

import pytest

from minigpt.sample_quality import known_word_share, parses, python_line_share


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("    return self.value + 1", True),
        ("def area(self, width):", True),  # a header gets a body
        ("else:", True),
        ("    except KeyError as error:", True),
        ("@property", True),
        ("x = (1, 2", False),  # unbalanced
        ("Return the sum of the values.", False),  # docstring prose
        ("def thate(self.atrnow_fuites", False),
        ("else", False),
    ],
)
def test_a_line_parses_on_its_own(line, ok):
    assert parses(line) is ok


def test_line_share_leaves_out_blank_comment_and_cut_lines():
    text = "x = 1\n\n# a comment\nfoo(bar\ny = 2\nthe last line is cut anywh"
    assert python_line_share(text) == pytest.approx(2 / 3)  # x = 1, foo(bar, y = 2
    assert python_line_share(["x = 1\ncut", "if x:\n    y(\ncut"]) == pytest.approx(2 / 3)
    assert python_line_share("no complete line") == 0.0


def test_known_words_are_the_corpus_words():
    corpus = "def value(self):\n    return self.total\n"
    assert known_word_share("return vontines self\nnext", corpus) == pytest.approx(2 / 3)
    assert known_word_share(["self.x\ncut", "total\ncut"], corpus) == pytest.approx(2 / 3)
    assert known_word_share("12 + 3\n", corpus) == 0.0
