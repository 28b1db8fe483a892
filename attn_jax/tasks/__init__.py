"""Tasks by name: ``config.task`` picks one."""

from __future__ import annotations

import pathlib

import ml_collections

from attn_jax.errors import UserError
from attn_jax.tasks.base import Task
from attn_jax.tasks.sentiment import SentimentTask
from attn_jax.tasks.summarization import SummarizationTask
from attn_jax.tasks.translation import TranslationTask

TASKS: dict[str, type[Task]] = {
    "sentiment": SentimentTask,
    "summarization": SummarizationTask,
    "translation": TranslationTask,
}


def build_task(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Task:
    if config.task not in TASKS:
        raise UserError(f"Unknown task {config.task!r}; valid tasks: {', '.join(sorted(TASKS))}.")
    return TASKS[config.task](config, workdir)
