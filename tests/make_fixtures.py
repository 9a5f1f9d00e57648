"""Write the feed fixtures in tests/data from the invented papers below.

Every title, abstract, author, id and date here is made up for digest's tests.
The files keep the structure of the real formats (arXiv RSS, arXiv API Atom,
Hugging Face daily_papers JSON, a daily-papers page dump) and nothing else.

Run ``python tests/make_fixtures.py`` after editing; a test checks that
the committed files are exactly what this script writes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).parent / "data"
HF_JSON = HERE / "hf-daily-papers.json"
ARXIV_RSS = HERE / "arxiv-rss.xml"
ARXIV_ATOM = HERE / "arxiv-api-atom.xml"
PAGE_DUMP = HERE / "daily-papers-nov27.txt"
JSON_FEED = HERE / "lab-news.json"

DAILY = "2026-11-27T00:00:00.000Z"


@dataclass(frozen=True)
class Paper:
    """One invented paper, with the optional Hugging Face extras it has."""

    arxiv_id: str
    title: str
    summary: str
    authors: tuple[str, ...]
    upvotes: int = 0
    published: str = "2026-11-25"
    keywords: tuple[str, ...] = ()
    github: str | None = None
    stars: int | None = None
    project: str | None = None
    organization: str | None = None
    hidden: tuple[str, ...] = ()
    comments: int = 0
    extra: dict[str, object] = field(default_factory=dict)


# -- the Hugging Face daily papers of 27 Nov 2026 (20 papers)

HF_PAPERS = (
    Paper(
        "2611.20101",
        "On the Limits of Prompt Portability: How LLM Rankings Shift Across Annotation Guidelines",
        "Leaderboards rank language models on a single prompt per task, yet annotation "
        "guidelines vary from one lab to the next. We rewrite the guidelines of twelve "
        "labelling tasks in five equivalent styles and re-rank fourteen models on each. The "
        "top model changes in nine of the twelve tasks, and rank correlations fall as low as "
        "0.41. We release the rewritten guidelines and argue that a ranking should report its "
        "spread over guideline styles, not a single number.",
        ("Mirela Oyelaran-Voss", "Tobiah Quennell", "Saoirse Brandt"),
        organization="Quennell Lab",
        keywords=("prompt portability", "annotation guidelines", "LLM rankings"),
    ),
    Paper(
        "2611.20102",
        "Calibrated Self-Reports: When LLM Questionnaires Predict Agent Behaviour",
        "Questionnaires borrowed from psychology are a cheap way to profile a language model, "
        "but do the answers say anything about what the model does as an agent? Across 3,200 "
        "simulated sessions we find that self-reports predict behaviour only when the "
        "questionnaire and the task share a context, and that persona prompts widen the gap. "
        "A short calibration step, in which the model first answers about a worked example, "
        "raises the correlation from 0.18 to 0.57.",
        (
            "Tobiah Quennell",
            "Priya Ramaswamy",
            "Jonas Ekwueme",
            "Lior Castellanos",
            "Ada Mbeki",
            "Hana Sørlie",
            "Kofi Marchbanks",
            "Yuki Abernathy",
        ),
        upvotes=5,
        github="https://github.com/quennell-lab/calibrated-self-reports",
        stars=3,
        comments=2,
        keywords=("self-reports", "questionnaires", "agent behaviour", "calibration"),
    ),
    Paper(
        "2611.20103",
        "The Warm-Start Safety Gap in LLM Tool Agents",
        "Agents that inherit a long tool-use history behave less safely than agents that start "
        "fresh. We measure this warm-start gap on 640 tasks with side effects: refusals of "
        "harmful actions fall from 91% to 63% after twenty benign turns. Summarising the "
        "history before acting closes most of the gap without hurting task success.",
        ("Rhea Vantongeren", "Marcus Iwu", "Tessaly Brandt-Ocampo"),
        upvotes=2,
        github="https://github.com/vantongeren/warm-start-gap",
        stars=14,
        project="https://warm-start-gap.example.org",
        keywords=("tool agents", "safety", "warm start"),
    ),
    Paper(
        "2611.20104",
        "ToolAtlas: Auditing What LLMs Believe About Their Tools",
        "Before a model calls a tool it holds beliefs about the tool's arguments, limits and "
        "side effects. ToolAtlas probes these beliefs with 9,000 questions generated from "
        "API documentation and compares them with what the tools do. Models are confidently "
        "wrong about rate limits and error codes, and fine-tuning on tool traces fixes the "
        "arguments but not the limits.",
        ("Anouk Desrosiers", "Ravi Kettleby", "Sunniva Hallorann", "Marco Tiepolo-Nakamura"),
        upvotes=2,
        github="https://github.com/desrosiers/toolatlas",
        stars=31,
        organization="Northwind AI",
        keywords=("tool knowledge", "auditing", "API documentation"),
    ),
    Paper(
        "2611.20105",
        "LLM Judges Prefer Their Own Preference Data",
        "When a language model judges responses that were tuned on its own preference labels, "
        "it rates them higher than humans do. We quantify this self-preference loop on four "
        "judge models and show that mixing a small share of human labels into the tuning data "
        "removes most of the bias.",
        ("Ines Aboderin", "Felix Grønvold"),
        upvotes=4,
        keywords=("LLM judges", "self-preference", "preference data"),
    ),
    Paper(
        "2611.20106",
        "A Frozen Encoder Is a Compatible Encoder: Stable Embeddings Across Model Updates",
        "Retrieval systems re-index their whole gallery whenever the embedding model changes. "
        "We show that freezing a stationary encoder and training only a light adapter keeps "
        "new embeddings compatible with the old index across five successive updates, with no "
        "backfilling and a loss of under one point of recall.",
        ("Niccolò Tavernari", "Federica Orsolini", "Simone Lazzeri-Brun"),
        upvotes=1,
        project="https://frozen-compatible.example.org",
        organization="Università di Esempio",
        keywords=("compatible embeddings", "model updates", "retrieval"),
    ),
    Paper(
        "2611.20107",
        "From Grids to Sequences: Shared Tokenizers for Multispectral Image Fusion",
        "Infrared and visible images are usually fused with two encoders and a hand-made "
        "merging rule. We tokenise both into one sequence with a shared vocabulary and let a "
        "small transformer do the fusion. The approach sets a new best on three fusion "
        "benchmarks while halving the parameters.",
        ("Lian Zhou", "Mei Xu", "Yang He", "Orrin Castile"),
        upvotes=12,
        project="https://grids-to-sequences.example.org",
        keywords=("image fusion", "tokenizer", "multispectral"),
    ),
    Paper(
        "2611.20108",
        "Draft Routing: Speculative Decoding Inside a Single Model",
        "Speculative decoding usually needs a second, smaller model to draft tokens. We route "
        "the draft through the model's own early layers and verify with the full stack, which "
        "gives a 2.1x speed-up at identical outputs and no extra memory.",
        ("Lian Zhou", "Yang He", "Mei Xu", "Orrin Castile"),
        upvotes=14,
        project="https://draft-routing.example.org",
        keywords=("speculative decoding", "early exit", "inference"),
    ),
    Paper(
        "2611.20109",
        "Streaming Speech Translation with Sparse Mixtures of Experts",
        "Simultaneous speech translation must trade latency for quality. A sparse mixture of "
        "experts, with one expert per latency regime, lets a single model serve every "
        "latency budget and improves BLEU by 1.8 at the lowest latency.",
        ("Tao Yang", "He Wenjun", "Kalinda Osei"),
        upvotes=3,
        keywords=("speech translation", "mixture of experts", "latency"),
    ),
    Paper(
        "2611.20110",
        "Conservative Reward Models Curb Reward Hacking in RLHF",
        "Policies trained with RLHF learn to exploit the errors of their reward model. We "
        "train the reward model to be pessimistic away from its data, using an ensemble "
        "disagreement penalty, and find that reward hacking on three dialogue benchmarks "
        "falls by two thirds with no loss in win rate.",
        ("Dagny Ferreira-Holm", "Ezekiel Ransome", "Malin Achterberg"),
        upvotes=9,
        github="https://github.com/ferreira-holm/conservative-rm",
        stars=57,
        comments=4,
        keywords=("RLHF", "reward hacking", "reward models"),
    ),
    Paper(
        "2611.20111",
        "Lanternfish: A Browser Agent That Knows When to Stop",
        "Web agents often keep clicking after the task is done or give up too early. "
        "Lanternfish adds a learned stopping head that reads the page and the goal and "
        "decides whether the task is complete. On two web benchmarks it cuts wasted actions "
        "by 38% and raises success by six points.",
        ("Odalys Prewitt", "Hamza Quist", "Bertille Ong"),
        upvotes=2,
        github="https://github.com/prewitt/lanternfish",
        stars=9,
        project="https://lanternfish.example.org",
        keywords=("web agent", "stopping", "browser"),
    ),
    Paper(
        "2611.20112",
        "Where, What and How Bad: Structured Defect Maps for Text-to-Image Feedback",
        "A single score says little about why a generated image is wrong. We collect 48,000 "
        "annotations that mark where a defect is, what kind it is and how severe it is, and "
        "train a feedback model that predicts these maps. Fine-tuning a generator on the maps "
        "reduces visible defects more than fine-tuning on scalar rewards.",
        ("Wen Okonjo", "Haruto Lindgren", "Yara Castellano", "Pim de Vries-Achebe"),
        upvotes=13,
        github="https://github.com/okonjo/defect-maps",
        stars=120,
        project="https://defect-maps.example.org",
        organization="Example Vision Group",
        keywords=("text-to-image", "feedback", "defects"),
    ),
    Paper(
        "2611.20113",
        "Hinged Parts: Perceiving Articulation for Robot Manipulation",
        "Robots fail to open drawers and doors when they misjudge where the hinge is. We "
        "revisit articulation perception with a part-level dataset of 1,100 household "
        "objects and a detector that predicts joint axes from a single depth image, raising "
        "opening success from 54% to 81% on a real arm.",
        ("Xiaoqing Marlow", "Teodora Vukić", "Emeka Strand"),
        upvotes=2,
        github="https://github.com/marlow/hinged-parts",
        stars=22,
        project="https://hinged-parts.example.org",
        organization="Example Robotics",
        keywords=("articulation", "manipulation", "depth"),
    ),
    Paper(
        "2611.20114",
        "PRISM-U: One Tokenizer for Understanding and Generating Images",
        "Unified multimodal models use one tokenizer for understanding and another for "
        "generation. PRISM-U learns a single holistic visual tokenizer with a two-level "
        "codebook and matches specialised models on both kinds of task.",
        ("Quinlan Asante", "Meiling Ferraro", "Tobias Eriksen-Diallo", "Sun-hee Pardo"),
        upvotes=25,
        organization="Example Multimodal Lab",
        hidden=("Anonymous Reviewer",),
        keywords=("unified multimodal", "visual tokenizer"),
    ),
    Paper(
        "2611.20115",
        "Backtrack Search: Tree-Structured Trial and Error for Deep Research Agents",
        "Research agents that search the web commit to a path and rarely return. Backtrack "
        "Search keeps a tree of queries, scores each branch by the evidence it found and "
        "returns to the most promising open branch, answering 12% more multi-hop questions "
        "with the same budget.",
        ("Zofia Brannock", "Idris Lamontagne", "Keiko Ashdown"),
        upvotes=10,
        keywords=("deep research", "tree search", "agents"),
    ),
    Paper(
        "2611.20116",
        "Tiled-EM: A Memory-Frugal Kernel for Soft Clustering on GPUs",
        "Expectation maximisation for Gaussian mixtures stores a responsibility for every "
        "point and component. Tiled-EM fuses the E and M steps in one kernel and never "
        "materialises that matrix, so ten million points fit in 2 GB and run 7x faster.",
        ("Galit Rosenthal-Ode", "Arvid Pemberton"),
        upvotes=2,
        github="https://github.com/rosenthal-ode/tiled-em",
        stars=44,
        organization="Example Systems",
        keywords=("clustering", "GPU kernel", "Gaussian mixtures"),
    ),
    Paper(
        "2611.20117",
        "Letterforms as Evidence: Morphology for Dating Medieval Scripts",
        "Palaeographers date a manuscript by the shapes of its letters. We measure those "
        "shapes automatically, from ink traces in 2,400 dated charters, and show that the "
        "measurements place undated charters within twenty years of expert estimates.",
        ("Malvina Estrada-Koch", "Raphaël Dunmore", "Dominika Sauvé"),
        upvotes=1,
        github="https://github.com/estrada-koch/letterforms",
        stars=6,
        project="https://letterforms.example.org",
        organization="Example Humanities Lab",
        keywords=("palaeography", "morphology", "manuscripts"),
    ),
    Paper(
        "2611.20118",
        "Rubato: Expressive Piano Performance from a Deadpan Score",
        "A score played exactly as written sounds mechanical. Rubato conditions a diffusion "
        "model on a deadpan rendering and a short reference performance,\nand transfers the "
        "reference's timing and dynamics to new pieces.",
        ("Dmitra Halvorsen",),
        upvotes=1,
        github="https://github.com/halvorsen/rubato",
        stars=18,
        project="https://rubato.example.org",
        keywords=("music", "performance rendering", "diffusion"),
    ),
    Paper(
        "2611.20119",
        "DEPTH: Discrete Autoencoders Aligned Layer by Layer",
        "Discrete autoencoders lose detail because their codes are aligned with a teacher "
        "only at the output. DEPTH aligns every layer and improves reconstruction at the "
        "same code length.",
        ("Yiwen Castellan", "Oskar Ambrose", "Leilani Fairbanks", "Ruoxi Temple"),
        upvotes=2,
        github="https://github.com/castellan/depth-ae",
        stars=11,
        keywords=("discrete autoencoder", "alignment", "tokenizer"),
    ),
    Paper(
        "2611.20120",
        "Ayurveda-Bench: Multi-Agent Medical Reasoning in Low-Resource Languages",
        "Medical question answering is studied almost only in English. We build a benchmark "
        "of 6,000 clinical questions in eight low-resource languages and a multi-agent "
        "system in which a translator, a clinician and a critic agent debate each answer.",
        ("Tanvi Oduya", "Arjun Halloway", "Subhra Kessel", "Ishani Moreau", "Rohan Tal"),
        upvotes=2,
        organization="Example Health AI",
        keywords=("medical reasoning", "multi-agent", "low-resource languages"),
    ),
)


# -- an arXiv RSS feed of 27 Nov 2026: two new papers and three re-announcements


@dataclass(frozen=True)
class RssItem:
    """One item of an arXiv RSS feed."""

    versioned_id: str
    announce: str
    title: str
    abstract: str
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    doi: str | None = None


_WARM_START = HF_PAPERS[2]

RSS_ITEMS = (
    RssItem(
        "2611.20311v1",
        "new",
        "Contracted Drift: Per-Layer Step Sizes for Local Learning at Depth",
        "Local learning trains each layer with its own loss and no global backward pass. It "
        "has been held back by accuracy that falls with depth and by fragile step sizes. We "
        "bound each layer's change per step by a drift contract, lr = epsilon / RMS(input), "
        "and find that one setting transfers from depth 8 to depth 40 (44.1 +/- 0.4 vs 39.7 "
        "+/- 0.6 for local Adam re-tuned per depth).",
        ("Ottilie Marchetti-Rowe",),
        ("cs.LG",),
    ),
    RssItem(
        _WARM_START.arxiv_id + "v1",
        "new",
        _WARM_START.title,
        _WARM_START.summary,
        _WARM_START.authors,
        ("cs.AI", "cs.CL"),
    ),
    RssItem(
        "2408.01234v2",
        "cross",
        "Bayesian Shrinkage for Sparse Brain Connectomes",
        "We propose a shrinkage prior for networks measured with error and apply it to "
        "structural connectomes of 1,200 people.",
        ("Priyam Dalca", "Zhen Hollis", "Dunstan Reyes"),
        ("stat.ME", "stat.ML"),
        doi="10.5555/example.2408.01234",
    ),
    RssItem(
        "2102.05678v3",
        "replace",
        "Tropical Geometry of Piecewise Linear Networks",
        "We describe the decision regions of ReLU networks with tropical polynomials.",
        ("Mikkel Jorvik", "Marta Kalnins", "Lukas Rennard"),
        ("cs.LG", "math.MG"),
    ),
    RssItem(
        "2301.09876v4",
        "replace-cross",
        "Optimal Transport Between Unbalanced Point Clouds",
        "An entropic solver for unbalanced transport that scales to a million points.",
        ("Selin Ardent", "Paulo Weiss"),
        ("math.OC", "stat.ML"),
    ),
)


# -- an arXiv API Atom response for "all:manipulation AND cat:cs.LG" (5 entries)


@dataclass(frozen=True)
class AtomEntry:
    """One entry of an arXiv API response."""

    versioned_id: str
    title: str
    summary: str
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    published: str
    comment: str | None = None
    wrapped: bool = False


ATOM_ENTRIES = (
    AtomEntry(
        "2611.19877v1",
        "Hinge: Dexterous Manipulation of Folding Tools",
        "Folding tools such as pliers and scissors have internal joints that a dexterous hand "
        "must coordinate with its grasp. Hinge turns a handful of clicks that mark a tool's "
        "functional parts (<1 minute per tool) into grasp keyframes, plans between them and "
        "refines the motion with reinforcement learning. It transfers zero-shot from "
        "simulation to a real hand on four tools.",
        ("Mireille Okafor", "Tomás Lindqvist", "Hye-jin Barros", "C. Anand Pillai"),
        ("cs.RO", "cs.AI", "cs.LG"),
        "2026-11-24T17:59:49Z",
        comment="Project page: https://hinge.example.org",
    ),
    AtomEntry(
        "2611.19402v2",
        "Negotiating Agents with Aggregated Private Signals",
        "Agents that negotiate on behalf of many users must combine private signals without "
        "revealing them. We give a protocol whose aggregate is exact and whose leakage is "
        "bounded by the number of rounds.",
        ("Rasmus Oyelowo", "Camille Strand"),
        ("cs.MA", "cs.LG"),
        "2026-11-23T09:12:03Z",
    ),
    AtomEntry(
        "2611.18816v1",
        "Long-Horizon Tool Use with Hierarchical World Models",
        "A world model that predicts only the next observation cannot plan a long task. We "
        "stack two world models, one for sub-goals and one for motions, and solve "
        "forty-step assembly tasks that flat planners fail.",
        ("Aurelio Banerjee", "Kirsi Mwangi", "Hollis Tran"),
        ("cs.LG", "cs.RO"),
        "2026-11-22T14:40:00Z",
        comment="12 pages, 7 figures",
        wrapped=True,
    ),
    AtomEntry(
        "2611.17305v3",
        "Transformers Learn In-Context Grasp Affordances",
        "Given a few demonstrations in context, a transformer policy infers where to grasp an "
        "unseen object. We study when this works and find that the number of demonstrations "
        "matters less than their diversity.",
        ("Noor Halvard", "Eitan Quigley"),
        ("cs.LG",),
        "2026-11-20T08:05:31Z",
        wrapped=True,
    ),
    AtomEntry(
        "2611.16000v1",
        "Contact-Rich Manipulation Benchmarks Are Too Easy",
        "Most contact-rich benchmarks can be solved by open-loop replay of one demonstration. "
        "We propose perturbations that defeat replay and re-rank nine published methods.",
        ("Beatriz Okoro", "Tuomas Fenwick", "Li Ann Sorensen"),
        ("cs.RO", "cs.LG"),
        "2026-11-19T21:17:45Z",
        comment="Accepted at an example workshop",
    ),
)


# -- a page dump of 27 Nov 2026: two papers of the HF day under another spelling, one new

DUMP_PAPERS = (
    ("the warm-start safety gap in LLM  tool agents", _WARM_START.summary),
    (
        "LANTERNFISH: A BROWSER AGENT THAT KNOWS WHEN TO STOP",
        HF_PAPERS[10].summary,
    ),
    (
        "Quiet Gradients: Noise Floors in Low-Precision Training",
        "Training in eight-bit floating point adds a noise floor to every gradient. We "
        "measure it on five model families and show when it, rather than the learning rate, "
        "limits the final loss.",
    ),
)


def _hex_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:24]


def _user(name: str) -> dict[str, object]:
    handle = name.split()[-1].lower()
    return {
        "_id": _hex_id("user", name),
        "avatarUrl": f"https://cdn-avatars.example.org/{handle}.png",
        "fullname": name,
        "name": handle,
        "type": "user",
        "isPro": False,
    }


def hf_item(paper: Paper) -> dict[str, object]:
    """One object of a daily_papers response, fields in the API's order."""
    authors = [
        {"_id": _hex_id(paper.arxiv_id, name), "name": name, "hidden": name in paper.hidden}
        for name in paper.authors + paper.hidden
    ]
    inner: dict[str, object] = {
        "id": paper.arxiv_id,
        "authors": authors,
        "publishedAt": f"{paper.published}T00:00:00.000Z",
        "submittedOnDailyAt": DAILY,
        "title": paper.title,
        "submittedOnDailyBy": _user(paper.authors[0]),
        "summary": paper.summary,
        "upvotes": paper.upvotes,
        "discussionId": _hex_id("discussion", paper.arxiv_id),
        "ai_summary": paper.summary.split(". ")[0].rstrip(".") + ".",
        "ai_keywords": list(paper.keywords),
        "ai_summary_model": "example/summariser-1",
    }
    if paper.github:
        inner.update(githubRepo=paper.github, githubRepoAddedBy="author", githubStars=paper.stars)
    if paper.project:
        inner["projectPage"] = paper.project
    if paper.organization:
        handle = re.sub(r"[^a-z0-9]+", "-", paper.organization.lower()).strip("-")
        inner["organization"] = {
            "_id": _hex_id("org", paper.organization),
            "name": handle,
            "fullname": paper.organization,
            "avatar": f"https://cdn-avatars.example.org/{handle}.png",
        }
    outer: dict[str, object] = {
        "paper": inner,
        "publishedAt": f"{paper.published}T18:00:00.000Z",
        "title": paper.title,
        "summary": paper.summary,
        "thumbnail": f"https://cdn-thumbnails.example.org/papers/{paper.arxiv_id}.png",
        "numComments": paper.comments,
        "submittedBy": _user(paper.authors[0]),
    }
    if paper.organization:
        outer["organization"] = inner["organization"]
    outer["isAuthorParticipating"] = bool(paper.github)
    return outer


def hf_json() -> str:
    """The daily_papers response, compact as the API sends it."""
    return json.dumps([hf_item(p) for p in HF_PAPERS], separators=(",", ":"), ensure_ascii=False)


def arxiv_rss() -> str:
    """An RSS 2.0 feed in arXiv's current layout."""
    items = []
    for item in RSS_ITEMS:
        arxiv_id = item.versioned_id.rsplit("v", 1)[0]
        lines = [
            "    <item>",
            f"      <title>{escape(item.title)}</title>",
            f"      <link>https://arxiv.org/abs/{arxiv_id}</link>",
            # The space before the newline is arXiv's.
            f"      <description>arXiv:{item.versioned_id} Announce Type: {item.announce} \n"
            f"Abstract: {escape(item.abstract)}</description>",
            f'      <guid isPermaLink="false">oai:arXiv.org:{item.versioned_id}</guid>',
            *(f"      <category>{c}</category>" for c in item.categories),
            "      <pubDate>Fri, 27 Nov 2026 00:00:00 -0500</pubDate>",
            f"      <arxiv:announce_type>{item.announce}</arxiv:announce_type>",
            "      <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>",
        ]
        if item.doi:
            lines.append(f"      <arxiv:DOI>{item.doi}</arxiv:DOI>")
        lines += [
            f"      <dc:creator>{escape(', '.join(item.authors))}</dc:creator>",
            "    </item>",
        ]
        items.append("\n".join(lines))
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<rss xmlns:arxiv="http://arxiv.org/schemas/atom" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" version="2.0">\n'
        "  <channel>\n"
        "    <title>cs.LG, cs.AI updates on arXiv.org</title>\n"
        "    <link>http://rss.arxiv.org/rss/cs.LG+cs.AI</link>\n"
        "    <description>cs.LG, cs.AI updates on the arXiv.org e-print archive.</description>\n"
        '    <atom:link href="http://rss.arxiv.org/rss/cs.LG+cs.AI" rel="self" '
        'type="application/rss+xml"/>\n'
        "    <language>en-us</language>\n"
        "    <lastBuildDate>Fri, 27 Nov 2026 05:00:00 +0000</lastBuildDate>\n"
        "    <pubDate>Fri, 27 Nov 2026 00:00:00 -0500</pubDate>\n"
        + "\n".join(items)
        + "\n  </channel>\n</rss>\n"
    )


def _wrap(text: str, indent: str, width: int = 72) -> str:
    """Line-wrap and indent text inside an element, as older API responses do."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n" + "\n".join(indent + ln for ln in lines) + "\n    "


def arxiv_atom() -> str:
    """An arXiv API response with opensearch counts, two entries in the older wrapped style."""
    entries = []
    for entry in ATOM_ENTRIES:
        title, summary = escape(entry.title), escape(entry.summary)
        if entry.wrapped:
            title = _wrap(title, "      ", width=30)
            summary = _wrap(summary, "      ")
        lines = [
            "  <entry>",
            f"    <id>http://arxiv.org/abs/{entry.versioned_id}</id>",
            f"    <title>{title}</title>",
            f"    <updated>{entry.published}</updated>",
            f'    <link href="https://arxiv.org/abs/{entry.versioned_id}" rel="alternate" '
            'type="text/html"/>',
            f'    <link href="https://arxiv.org/pdf/{entry.versioned_id}" rel="related" '
            'type="application/pdf" title="pdf"/>',
            f"    <summary>{summary}</summary>",
            *(
                f'    <category term="{c}" scheme="http://arxiv.org/schemas/atom"/>'
                for c in entry.categories
            ),
            f"    <published>{entry.published}</published>",
        ]
        if entry.comment:
            lines.append(f"    <arxiv:comment>{escape(entry.comment)}</arxiv:comment>")
        lines.append(f'    <arxiv:primary_category term="{entry.categories[0]}"/>')
        lines += [
            f"    <author>\n      <name>{escape(a)}</name>\n    </author>" for a in entry.authors
        ]
        lines.append("  </entry>")
        entries.append("\n".join(lines))
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
        'xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">\n'
        "  <id>https://arxiv.org/api/exampleQueryId0000000000</id>\n"
        "  <title>arXiv Query: search_query=all:manipulation AND cat:cs.LG&amp;id_list=&amp;"
        "start=0&amp;max_results=5</title>\n"
        "  <updated>2026-11-27T02:30:00Z</updated>\n"
        '  <link href="https://arxiv.org/api/query?search_query=all:manipulation+AND+cat:cs.LG'
        '&amp;start=0&amp;max_results=5&amp;id_list=" type="application/atom+xml"/>\n'
        "  <opensearch:itemsPerPage>5</opensearch:itemsPerPage>\n"
        "  <opensearch:totalResults>4127</opensearch:totalResults>\n"
        "  <opensearch:startIndex>0</opensearch:startIndex>\n" + "\n".join(entries) + "\n</feed>\n"
    )


def json_feed() -> str:
    """A JSON Feed 1.1 of a lab's news: two posts about papers of the HF day, and one other."""
    items = [
        {
            "id": f"https://lab.example.org/news/{paper.arxiv_id}",
            "url": f"https://arxiv.org/abs/{paper.arxiv_id}",
            "title": paper.title,
            "content_text": paper.summary,
            "date_published": f"{paper.published}T09:00:00Z",
            "authors": [{"name": name} for name in paper.authors],
            "tags": list(paper.keywords),
        }
        for paper in (HF_PAPERS[5], HF_PAPERS[12])
    ]
    items.append(
        {
            "id": "https://lab.example.org/news/retreat",
            "url": "https://lab.example.org/news/retreat",
            "title": "Notes from the Winter Reading Group on Sparse Attention",
            "content_html": (
                "<p>We read <b>four</b> papers on sparse attention.</p><p>Slides are up.</p>"
            ),
            "date_published": "2026-11-26T16:30:00+01:00",
        }
    )
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Example Lab news",
        "home_page_url": "https://lab.example.org/",
        "feed_url": "https://lab.example.org/news/feed.json",
        "authors": [{"name": "Example Lab"}],
        "items": items,
    }
    return json.dumps(feed, indent=2, ensure_ascii=False) + "\n"


def page_dump() -> str:
    """A daily-papers page dump: five header lines, then title and abstract paragraphs."""
    header = [
        "new",
        "Get trending papers in your email inbox!",
        "Subscribe",
        "byAK and the research community",
        "Nov 27",
    ]
    body = [p for pair in DUMP_PAPERS for p in pair]
    return "\n\n".join(header + body)


FIXTURES = {
    HF_JSON: hf_json,
    ARXIV_RSS: arxiv_rss,
    ARXIV_ATOM: arxiv_atom,
    PAGE_DUMP: page_dump,
    JSON_FEED: json_feed,
}


def main() -> None:
    for path, make in FIXTURES.items():
        path.write_text(make(), encoding="utf-8")
        print(f"wrote {path.name}")


if __name__ == "__main__":
    main()
