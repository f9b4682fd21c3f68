"""Answer parsing on real-world answer strings."""

import pytest

from triad_eval.parsing import parse_answer

YES_NO = {"A": "Yes", "B": "No"}
DEFECTS = {"A": "Scratch", "B": "Pit", "C": "Inclusion", "D": "Crack"}

CASES = [
    ("B", YES_NO, "B"),
    ("B.", YES_NO, "B"),
    ("(B)", YES_NO, "B"),
    ("B\n", YES_NO, "B"),
    ("**B**", YES_NO, "B"),
    ("B) No", YES_NO, "B"),
    ("a) Yes", YES_NO, "A"),
    ("The answer is B", YES_NO, "B"),
    ("answer: b", YES_NO, "B"),
    ("ANSWER: A", YES_NO, "A"),
    ("Answer: B. No", YES_NO, "B"),
    ("Answer: (B) No", YES_NO, "B"),
    ("Yes", YES_NO, "A"),
    ("No.", YES_NO, "B"),
    ("no", YES_NO, "B"),
    ("Yes, there is a defect.", YES_NO, "A"),
    ("No, the bottle looks normal.", YES_NO, "B"),
    ("No defect is visible.", YES_NO, "B"),
    ("Yes\n\nExplanation: there is a crack on the left side of the rim.", YES_NO, "A"),
    ("<think>The rim looks chipped, so maybe A... but the lighting</think>\nB", YES_NO, "B"),
    ("<think>hmm</think> The answer is A.", YES_NO, "A"),
    ("Okay, let me look at the image carefully. </think> A", YES_NO, "A"),
    ("<thinking>Option B seems wrong.</thinking>\nAnswer: A", YES_NO, "A"),
    ("The answer is B, not A.", YES_NO, "B"),
    ("A is tempting, but the rim is intact; the answer is B.", YES_NO, "B"),
    ("Answer with the option's letter: B", YES_NO, "B"),
    ("Based on the image, B.", YES_NO, "B"),
    ("A or B", YES_NO, None),
    ("Both A and B are possible.", YES_NO, None),
    ("I cannot determine this from the image.", YES_NO, None),
    ("", YES_NO, None),
    (None, YES_NO, None),
    ("Yes and no.", YES_NO, None),
    ("[C]", DEFECTS, "C"),
    ("c", DEFECTS, "C"),
    ("Option C", DEFECTS, "C"),
    ("C: Inclusion", DEFECTS, "C"),
    ("The correct answer is (D) Crack.", DEFECTS, "D"),
    ("Final answer: D", DEFECTS, "D"),
    ("My choice is (A).", DEFECTS, "A"),
    ("The answer is: (C)", DEFECTS, "C"),
    ("Option D: Crack", DEFECTS, "D"),
    ("D - Crack", DEFECTS, "D"),
    ("A.", DEFECTS, "A"),
    ("Pit", DEFECTS, "B"),
    ("The defect is a pit.", DEFECTS, "B"),
    ("I think it's C. Inclusion", DEFECTS, "C"),
    ("The image shows a scratch.", DEFECTS, "A"),
    ("It is B because of the small round pit.", DEFECTS, "B"),
    ("Between A and C, I'd say C.", DEFECTS, "C"),
    ("Answer: None of the options", DEFECTS, None),
    ("Yes", DEFECTS, None),
    ("E", DEFECTS, None),
    ("There is a scratch and a crack.", DEFECTS, None),
]


@pytest.mark.parametrize(("text", "options", "expected"), CASES)
def test_parse_answer(text, options, expected):
    assert parse_answer(text, options) == expected


def test_the_table_is_large_enough():
    assert len(CASES) >= 40
