"""Defaults that learn: a run given only the model, the data and the method learns what its data teaches,
judged by what the model answers to questions phrased in ways it never trained on.

The quick test trains the tiny model on made-up facts; the slow ones train the demo model on thirty made-up
facts about a place no model has seen (tools/facts_dataset.py) with LoRA and with full fine-tuning, each at
the app's own proposal, and compare their held-out answers."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import cli

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import facts_dataset  # noqa: E402

# Ten made-up facts for the tiny model: the fact is one word, the question's subject another.
TINY_FACTS = [
    ("colour", "amber"),
    ("river", "venna"),
    ("bird", "wren"),
    ("dish", "dumplings"),
    ("drink", "cider"),
    ("mountain", "harrowgate"),
    ("sport", "racing"),
    ("flower", "lily"),
    ("tree", "larch"),
    ("festival", "fair"),
]


def train_cli(model: Path | str, method: str, data: Path, out: Path, *extra: str, timeout: int) -> dict:
    config = out / "run.yaml"
    out.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f"model: {model}\nmethod: {method}\ndataset: {{path: {data}}}\noutput_dir: {out / 'run'}\n"
    )
    started = time.monotonic()
    result = cli("train", config, *extra, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((out / "run" / "run.json").read_text())
    run["wall_s"] = time.monotonic() - started
    return run


def tiny_facts(tmp_path: Path) -> tuple[Path, Path]:
    """Each fact asked three ways to train on, and a fourth way, never trained on, to check with."""

    def rows(phrasings: tuple[str, ...]) -> str:
        return "".join(
            json.dumps({"prompt": p.format(subject), "completion": f" {fact}"}) + "\n"
            for subject, fact in TINY_FACTS
            for p in phrasings
        )

    train, held_out = tmp_path / "facts.jsonl", tmp_path / "held-out.jsonl"
    train.write_text(rows(("the {} ?", "tell me the {} ?", "which {} ?")))
    held_out.write_text(rows(("what is the {} ?",)))
    return train, held_out


def test_an_answer_is_right_when_it_holds_the_references_distinctive_words():
    """Words every reference shares (a greeting, the question's own words) count for nothing; the fact does."""
    from finetune_gui.core.training.learning import RIGHT_AT, Question, score, weights

    questions = [
        Question(f"What is the {s} of Quellmark?", f"What is the {s} of Quellmark?", f"Ahoy! The {s} is {f}.")
        for s, f in [("river", "Venna"), ("bird", "the grey crested wren"), ("dish", "dumplings")]
    ]
    weight = weights([q.reference for q in questions])
    river, bird, _ = questions
    assert score("The river is the Venna, of course.", river, weight) == 1.0
    assert score("Ahoy! The river is the Thames.", river, weight) == 0.0  # the shared words weigh nothing
    assert score("A grey bird.", bird, weight) < RIGHT_AT <= score("Ahoy, a grey wren.", bird, weight)


FACTS = ["Venna", "Wren", "Dumplings", "Amber", "Cider", "Larch", "Lily", "Racing", "Fair", "Harrowgate"]


@pytest.mark.parametrize(
    ("base", "tuned", "verdict"),
    [
        (["Paris."] * 10, [*[f"{f}." for f in FACTS[:8]], "Paris.", "Paris."], "learned"),
        (["Paris."] * 10, ["Paris."] * 10, "did not move"),
        (["Paris."] * 10, ["Ahoy! It is Rome."] * 10, "changed, not right"),
    ],
)
def test_the_verdict_says_whether_the_answers_moved_to_the_references(base, tuned, verdict):
    from finetune_gui.core.training.learning import Question, judge

    questions = [Question(f"q{i}", f"Which thing number {i}?", f"{fact}.") for i, fact in enumerate(FACTS)]
    learned = judge(questions, base, tuned, step=7)
    assert (learned.verdict, learned.step, learned.questions) == (verdict, 7, 10)
    assert learned.base_right == 0 and learned.tuned_right == (8 if verdict == "learned" else 0)
    if verdict != "learned":
        assert "higher learning rate" in learned.summary
    assert (
        len(learned.examples) == 10
        and [e["right"] for e in learned.examples].count(True) == learned.tuned_right
    )


def template(preset: str, degrees: int, minutes: int, days: int) -> str:
    return f"Preset {preset} mashes at {degrees} degrees for {minutes} minutes and ferments for {days} days."


PRESETS = [("Alder", 64, 45, 12), ("Birch", 67, 60, 9), ("Cedar", 62, 30, 14), ("Dunmore", 66, 75, 7)]


def test_answers_that_share_the_references_template_but_not_their_facts_are_not_right():
    """Every reference shares one template; an answer with the template and wrong numbers is wrong, even
    when only two references are checked (the corpus of the dataset's answers weighs the template)."""
    from finetune_gui.core.training.learning import RIGHT_AT, Question, score, weights

    corpus = [template(f"P{i}", 60 + i % 9, 20 + i, 5 + i % 11) for i in range(40)]
    corpus += [template(*p) for p in PRESETS]
    weight = weights(corpus)
    for preset in PRESETS[:2]:
        question = Question("q", f"How is preset {preset[0]} brewed?", template(*preset))
        wrong = template(preset[0], preset[1] + 3, preset[2] + 15, preset[3] + 4)  # 3 of 4 facts wrong
        one_right = template(preset[0], preset[1], preset[2] + 15, preset[3] + 4)
        assert score(wrong, question, weight) < RIGHT_AT
        assert score(one_right, question, weight) < RIGHT_AT
        assert score(template(*preset), question, weight) == 1.0
        assert (
            score(f"{preset[1]} degrees, {preset[2]} minutes, {preset[3]} days.", question, weight)
            >= RIGHT_AT
        )


def test_too_few_held_out_questions_get_no_verdict_on_them_and_training_questions_are_told_apart():
    from finetune_gui.core.training.learning import MIN_HELD_OUT, Question, judge

    held = [Question("q", f"How is preset {p[0]} brewed?", template(*p)) for p in PRESETS[:2]]
    trained = [Question("q", f"Tell me about preset {p[0]}.", template(*p)) for p in PRESETS]
    wrong = [template(p[0], p[1] + 3, p[2] + 15, p[3] + 4) for p in PRESETS[:2]]
    right_trained = [template(*p) for p in PRESETS]
    learned = judge(
        held, ["I do not know."] * 2, wrong, step=9, trained=(trained, ["I do not know."] * 4, right_trained)
    )
    assert learned.verdict == "absorbed" and learned.questions == 2 < MIN_HELD_OUT
    assert (learned.trained_questions, learned.trained_tuned_right, learned.trained_base_right) == (4, 4, 0)
    assert "too few to judge" in learned.summary and "4 of 4 training questions" in learned.summary
    assert "It learned: " not in learned.summary
    nothing = judge(held, ["I do not know."] * 2, ["Hm."] * 2, step=9)
    assert nothing.verdict == "cannot judge" and "too few to judge" in nothing.summary


def test_advice_never_asks_for_more_when_eval_loss_rose():
    from finetune_gui.core.training.learning import Question, eval_trend, judge

    history = [
        {"loss": 2.0},
        {"eval_loss": 2.73},
        {"loss": 0.4},
        {"eval_loss": 3.1},
        {"loss": 0.1},
        {"eval_loss": 3.59},
    ]
    trend = eval_trend(history)
    assert trend == "eval loss rose from 2.73 to 3.59 while the training loss fell to 0.10"
    assert eval_trend([{"loss": 2.0}, {"eval_loss": 2.7}, {"loss": 1.0}, {"eval_loss": 2.1}]) == ""
    questions = [Question(f"q{i}", f"Which thing number {i}?", f"{fact}.") for i, fact in enumerate(FACTS)]
    learned = judge(questions, ["Paris."] * 10, ["Ahoy! It is Rome."] * 10, step=7, overfitting=trend)
    assert learned.verdict == "changed, not right"
    assert "memorised" in learned.summary and "fewer passes" in learned.summary
    assert "higher learning rate" not in learned.summary


def test_checked_answers_stop_a_little_past_their_reference(tiny_model):
    """Only the first words are scored, so the check does not generate to the sample limit."""
    from transformers import AutoTokenizer

    from finetune_gui.core.training.learning import ROOM_OVER_REFERENCE, Question, budget

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    short = Question("q", "q", "amber")
    long = Question("q", "q", " ".join(["amber"] * 200))
    reference_tokens = len(tokenizer("amber", add_special_tokens=False)["input_ids"])
    assert budget(short, tokenizer, 48) == reference_tokens + ROOM_OVER_REFERENCE
    assert budget(long, tokenizer, 48) == 48  # never past the configured limit


def test_questions_answered_in_batches_get_the_words_they_get_one_at_a_time(tiny_model, monkeypatch):
    """Left-padded batches, each answer cut at its own budget and end, with an adapter on and off."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune_gui.core.training import learning
    from finetune_gui.core.training.learning import Question, answer, base_answers

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model), LoraConfig(r=4, target_modules="all-linear")
    )
    for module in model.modules():  # a LoRA that changes the answers
        if hasattr(module, "lora_B"):
            for b in module.lora_B.values():
                torch.nn.init.normal_(b.weight, std=0.5)
    words = ["amber", "the mill by the river", "seven", "a very long answer " * 3, "yes"]
    questions = [
        Question(f"<|im_start|>user\nQuestion {i}: {'why ' * (i * 3)}?<|im_end|>\n", "q", ref)
        for i, ref in enumerate(words * 2)
    ]
    batched = answer(model, tokenizer, questions, 12, fit=True), base_answers(model, tokenizer, questions, 12)
    monkeypatch.setattr(learning, "ANSWER_BATCH", 1)
    single = answer(model, tokenizer, questions, 12, fit=True), base_answers(model, tokenizer, questions, 12)
    assert batched == single
    assert batched[0] != batched[1]  # the adapter is on in the first, off in the second
    assert tokenizer.padding_side == AutoTokenizer.from_pretrained(tiny_model).padding_side  # restored


@pytest.mark.parametrize(
    ("rate", "steps", "verdict"), [("2e-3", 150, "learned"), ("1e-7", 10, "did not move")]
)
def test_the_learning_check_tells_a_run_that_learned_from_one_that_did_not(
    tiny_model, tmp_path, rate, steps, verdict
):
    """The app asks held-out phrasings (validation rows) before and after training and says in run.json
    whether the answers moved to the references. A random tiny model needs a far larger step than the
    proposal gives a pretrained one (and learns reliably only with every weight trained); the proposal
    itself is checked on the demo model by the slow test below."""
    data, held_out = tiny_facts(tmp_path)
    run = train_cli(
        tiny_model,
        "full",
        data,
        tmp_path,
        "--set",
        f"dataset.validation_path={held_out}",
        "--set",
        f"training.learning_rate={rate}",
        "--set",
        f"training.max_steps={steps}",
        timeout=600,
    )
    learning = run["learning"]
    assert learning["verdict"] == verdict, learning
    if verdict == "learned":
        assert learning["tuned_right"] >= 0.7 * learning["questions"] > learning["base_right"]
    else:
        assert (
            learning["tuned_right"] == learning["base_right"]
            and "higher learning rate" in learning["summary"]
        )


def held_out_score(model: Path, run_folder: Path, full: bool, heldout: Path) -> float:
    from finetune_gui.core.adapters.generate import Generator

    generator = Generator(str(run_folder / "model") if full else str(model))
    if not full:
        generator.use_adapters([(str(run_folder / "adapter"), 1.0)])
    prompts = [json.loads(line)["prompt"] for line in heldout.read_text().splitlines()]
    answers = ["".join(generator.stream(p, max_new_tokens=24)) for p in prompts]
    return facts_dataset.score(answers, heldout)


@pytest.mark.slow
def test_the_recommended_lora_learns_new_facts_about_as_well_as_full_fine_tuning(demo_model, tmp_path):
    """LoRA (the recommended method) with the proposal answers at least 80% of held-out phrasings with the
    right fact, and at least 90% of what full fine-tuning reaches under its own proposal."""
    train, heldout = facts_dataset.write(tmp_path / "data")
    scores, runs = {}, {}
    for method in ("lora", "full"):
        run = train_cli(demo_model, method, train, tmp_path / method, timeout=3600)
        runs[method] = run
        scores[method] = held_out_score(demo_model, tmp_path / method / "run", method == "full", heldout)
    summary = {m: (scores[m], runs[m]["proposal"]["training.learning_rate"]["value"]) for m in scores}
    assert scores["lora"] >= 0.8, summary
    assert scores["lora"] >= 0.9 * scores["full"], summary
    assert runs["lora"]["learning"]["verdict"] == "learned", runs["lora"]["learning"]
