"""Step 5: the settings that matter in Basic, the rest in Advanced. Every field, its label, tooltip,
allowed values and default come from RunConfig's metadata; values are checked by the same validation
as a YAML file, so the window can never produce a config the CLI would refuse."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.config import (
    SECTIONS,
    RunConfig,
    config_field,
    field_help,
    field_label,
    get_field,
    in_words,
)
from finetune_gui.core.errors import ConfigError
from finetune_gui.core.methods import METHODS
from finetune_gui.core.objectives import OBJECTIVES
from finetune_gui.gui.widgets import AMBER, error_label, muted, show_error
from finetune_gui.gui.wizard.page import WizardPage
from finetune_gui.gui.wizard.state import WizardState

BASIC = [
    "training.max_steps",
    "training.epochs",
    "training.learning_rate",
    "training.batch_size",
    "training.max_seq_len",
    "lora.r",
    "preference.beta",
]


def _default(dotted: str) -> Any:
    return get_field(RunConfig(), dotted)


class FieldEditor(QWidget):
    """One field: a combo for choices, a check box for booleans, a line edit (parsed as YAML) otherwise."""

    def __init__(self, dotted: str, on_change, parent: QWidget | None = None):
        super().__init__(parent)
        self.dotted = dotted
        self.on_change = on_change
        self.field, self.hint = config_field(dotted)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        choices = self.field.metadata.get("choices")
        if choices:
            self.widget: QWidget = QComboBox()
            self.widget.addItems(list(choices))
            self.widget.currentTextChanged.connect(lambda _t: self.on_change(self))
        elif self.hint is bool:
            self.widget = QCheckBox()
            self.widget.toggled.connect(lambda _b: self.on_change(self))
        else:
            self.widget = QLineEdit()
            self.widget.editingFinished.connect(lambda: self.on_change(self))
        self.widget.setToolTip(field_help(dotted))
        row.addWidget(self.widget, 1)
        reset = QToolButton()
        reset.setText("default")
        reset.setToolTip(f"Back to the default: {self._text(_default(dotted)) or 'empty'}")
        reset.clicked.connect(self.reset)
        row.addWidget(reset)

    @staticmethod
    def _text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, list):
            return ", ".join(map(str, value))
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    def show_value(self, value: Any, placeholder: str = "") -> None:
        self.widget.blockSignals(True)
        if isinstance(self.widget, QComboBox):
            self.widget.setCurrentText(str(value))
        elif isinstance(self.widget, QCheckBox):
            self.widget.setChecked(bool(value))
        else:
            self.widget.setText(self._text(value))
            self.widget.setPlaceholderText(placeholder)
        self.widget.blockSignals(False)

    def value(self) -> Any:
        if isinstance(self.widget, QComboBox):
            return self.widget.currentText()
        if isinstance(self.widget, QCheckBox):
            return self.widget.isChecked()
        text = self.widget.text().strip()
        if not text:
            return None
        if typing.get_origin(self.hint) is not None and list in typing.get_args(self.hint) and "," in text:
            return [part.strip() for part in text.split(",") if part.strip()]
        import yaml  # here, not at start-up: YAML is 15 ms of the window's start

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return text

    def reset(self) -> None:
        self.show_value(_default(self.dotted))
        self.on_change(self)


class SettingsPage(WizardPage):
    title = "Training settings"

    def __init__(self, state: WizardState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.editors: dict[str, FieldEditor] = {}
        self.errors: dict[str, str] = {}  # field → what is wrong with the value typed there
        self.proposed_for: tuple | None = None
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        inner = QWidget()
        inner.setMaximumWidth(760)  # a form, not a spreadsheet: fields stay a readable width
        column = QVBoxLayout(inner)
        self.basic = QGroupBox("Basic")
        self.basic_form = QFormLayout(self.basic)
        column.addWidget(self.basic)
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced settings")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced = QGroupBox("Advanced")
        self.advanced_form = QFormLayout(self.advanced)
        self.advanced.hide()
        self.advanced_toggle.toggled.connect(self._toggle_advanced)
        column.addWidget(self.advanced_toggle)
        column.addWidget(self.advanced)
        column.addStretch(1)
        scroll.setWidget(inner)
        self.note = muted("")
        self.body.addWidget(self.note)
        self.error = error_label()
        # A value far from the proposal: said in one sentence, Next stays on (the user may mean it).
        self.warning = muted("")
        self.warning.setStyleSheet(f"color: {AMBER};")
        self.warning.hide()
        self.body.addWidget(self.error)
        self.body.addWidget(self.warning)
        self.body.addWidget(scroll, 1)

    def _toggle_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _fields_for_method(self) -> list[str]:
        names = [f"training.{f.name}" for f in dataclasses.fields(SECTIONS["training"])]
        section = METHODS[self.state.config.method].settings_section
        if section:
            names += [f"{section}.{f.name}" for f in dataclasses.fields(SECTIONS[section])]
        objective = OBJECTIVES[self.state.config.training.objective]
        if objective.pairs:
            names += [
                f"preference.{f.name}"
                for f in dataclasses.fields(SECTIONS["preference"])
                if objective.reference or f.name == "beta"  # ORPO has no reference and one loss
            ]
        return names

    def _rebuild(self) -> None:
        for form in (self.basic_form, self.advanced_form):
            while form.rowCount():
                form.removeRow(0)
        self.editors = {}
        for dotted in self._fields_for_method():
            editor = FieldEditor(dotted, self._on_change)
            self.editors[dotted] = editor
            form = self.basic_form if dotted in BASIC else self.advanced_form
            form.addRow(field_label(dotted), editor)
            label = form.labelForField(editor)
            if label is not None:
                label.setToolTip(field_help(dotted))

    def enter(self) -> None:
        # Values that were refused were never applied: the fields show the config again, error-free.
        self.errors.clear()
        self._show_errors()
        self._propose()
        self._rebuild()
        self._show_values()

    def _propose(self) -> None:
        """Say what the app proposes for the fields left empty (the core's proposal, the same the command
        line gets): the fields show it greyed; typing a value overrides it."""
        proposal = self.state.proposal()
        if proposal is None:
            self.note.setText("Choose a model and a dataset first: the proposal depends on both.")
            return
        parts = [
            f"• {field_label(key)} {_shown(value)}: {proposal.reasons[key]}"
            for key, value in proposal.values.items()
        ]
        self.note.setText(
            "\n".join(
                [
                    "Proposed for your model and data (leave a field empty to keep the proposal; hover a field "
                    "for what it does):",
                    *parts,
                ]
            )
            if parts
            else "Every setting is your own; empty a field to get the app's proposal."
        )

    def _show_values(self) -> None:
        proposal = self.state.proposal()
        proposed = proposal.values if proposal else {}
        for dotted, editor in self.editors.items():
            placeholder = f"{_shown(proposed[dotted])} (proposed)" if dotted in proposed else ""
            editor.show_value(self.state.field(dotted), placeholder)

    def _on_change(self, editor: FieldEditor) -> None:
        """Check the typed value the way a YAML file is checked; apply it only when valid. Every field's
        problem is listed, and Next stays off while there is one."""
        try:
            raw = editor.value()
            if raw is None and not _optional(editor.hint):
                raise ConfigError(f"'{editor.dotted}' needs a value.")
            self.state.set_field(editor.dotted, raw)  # checked, then re-estimated
        except ConfigError as exc:
            self.errors[editor.dotted] = in_words(str(exc))
        else:
            self.errors.pop(editor.dotted, None)
            self._propose()
            self._show_values()
        self._show_errors()
        self.completeness_changed.emit()

    def _show_errors(self) -> None:
        show_error(self.error, "\n".join(self.errors.values()))
        from finetune_gui.core.estimate.proposal import rate_warning

        parameters = self.state.shape.parameters if self.state.shape is not None else 0
        warning = rate_warning(self.state.config, parameters) if parameters else ""
        self.warning.setText(f"⚠ {warning}" if warning else "")
        self.warning.setVisible(bool(warning))
        for dotted, editor in self.editors.items():
            editor.widget.setStyleSheet("border: 1px solid #d2473d;" if dotted in self.errors else "")

    def is_complete(self) -> bool:
        return not self.errors


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)
