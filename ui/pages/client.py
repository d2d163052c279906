"""Client page: search, score (gauge + decision), explanation, comparison, what-if."""

from __future__ import annotations

import asyncio
import math

import msgspec
import numpy as np
from nicegui import app, ui

from app.scoring.bundle import document_manifest
from ui import locale, logic
from ui.api_client import ApiError
from ui.i18n import feature_label, t
from ui.pages.common import _attr, api, chart, error_box, frame, lang, login_redirect
from ui.pages.letter import letter_links
from ui.pages.worklist import fill_worklist

WHATIF_FEATURES = 6
# raw application columns offered in the what-if (when the database has the Home Credit tables)
WHATIF_COLUMNS = (
    "AMT_INCOME_TOTAL",
    "AMT_CREDIT",
    "AMT_ANNUITY",
    "AMT_GOODS_PRICE",
    "EXT_SOURCE_1",
    "EXT_SOURCE_2",
    "EXT_SOURCE_3",
    "CNT_CHILDREN",
    "DAYS_EMPLOYED",
)
COMPARE_DEFAULT = 3
NEIGHBOURS = 15
POPULATION_LIMIT = 2000
DEBOUNCE_S = 0.3


@ui.page("/", response_timeout=20)
async def client_page(client_id: str | None = None):
    """`client_id` is read as text: a bad value (`?client_id=abc`) gets the page with a French message, never
    FastAPI's raw 422."""
    if (redirect := login_redirect()) is not None:
        return redirect
    lg = lang()
    main = await frame("client", t("nav_client", lg))
    with main:
        with ui.row().classes("items-start gap-2 w-full flex-wrap").props("role=search"):
            search = (
                ui.input(t("search_label", lg), autocomplete=[])
                .props(
                    f'outlined dense inputmode=numeric aria-label="{_attr(t("search_aria", lg))}" data-testid=search'
                )
                .classes("w-full sm:w-64")
                .mark("search")
            )
            button = ui.button(t("search_button", lg), icon="search").props("data-testid=search-button")
        ui.label(t("search_hint", lg)).classes("text-sm").style("color:#374151")
        suggestions = (
            ui.row()
            .classes("items-center gap-1 flex-wrap")
            .props(f'role=group aria-label="{_attr(t("suggestions", lg))}" data-testid=suggestions')
        )
        result = ui.column().classes("w-full gap-4").props("data-testid=result")

    async def suggest(e) -> None:
        text = (e.value or "").strip()
        if not text.isdigit():
            search.set_autocomplete([])
            suggestions.clear()
            return
        try:
            ids = await api().suggest(text, limit=8)
        except ApiError:
            return
        if (search.value or "").strip() != text:
            return  # the user typed on meanwhile
        search.set_autocomplete([str(i) for i in ids])
        suggestions.clear()
        others = [i for i in ids if str(i) != text]
        if others:
            with suggestions:
                ui.label(f"{t('suggestions', lg)} :" if lg == "fr" else f"{t('suggestions', lg)}:").classes(
                    "text-sm"
                ).style("color:#374151")
                for i in others:
                    ui.button(str(i), on_click=lambda _, i=i: pick(i)).props("flat dense no-caps color=primary")

    async def pick(client: int) -> None:
        search.value = str(client)
        suggestions.clear()
        app.storage.user["client"] = client
        ui.navigate.history.replace(f"/?client_id={client}")  # a reload (language toggle) keeps the file
        await show_client(result, client, lg)

    async def submit() -> None:
        text = (search.value or "").strip()
        if not logic.is_client_id(text):
            result.clear()
            with result:
                error_box(t("search_invalid", lg), lg)
            return
        suggestions.clear()
        app.storage.user["client"] = int(text)
        ui.navigate.history.replace(f"/?client_id={int(text)}")  # a reload (language toggle) keeps the file
        await show_client(result, int(text), lg)

    search.on_value_change(suggest)
    search.on("keydown.enter", submit)
    button.on_click(submit)

    if client_id is not None and not logic.is_client_id(client_id):
        search.value = client_id[:40]
        with result:
            error_box(t("bad_client_param", lg, value=client_id[:40]), lg)
        await fill_worklist(result, lg)
    elif client_id is not None:
        search.value = client_id.strip()
        suggestions.clear()
        await show_client(result, int(client_id), lg)
    else:  # the landing page: the officer's worklist
        await fill_worklist(result, lg)


async def _settle(*tasks: asyncio.Task) -> None:
    """Cancel what is still running and collect every result, so no task error goes unretrieved."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def show_client(container: ui.column, client_id: int, lg: str) -> None:
    """The client's file. The six API calls it needs are independent: they all start at once and each part
    of the page is drawn as soon as its own answers are in (before: one call after another)."""
    container.clear()
    with container:
        spinner = ui.spinner(size="lg").props(f'aria-label="{t("loading", lg)}"')
    client = api()
    score_t = asyncio.create_task(client.score(client_id))
    info_t = asyncio.create_task(client.client(client_id))
    explain_t = asyncio.create_task(client.explain(client_id, top=8, lang=lg))
    model_t = asyncio.create_task(client.model())
    features_t = asyncio.create_task(client.features(client_id))
    application_t = asyncio.create_task(_application_or_empty(client_id))
    later = (explain_t, model_t, features_t, application_t)
    try:
        score, info = await asyncio.gather(score_t, info_t)
    except ApiError as e:
        await _settle(score_t, info_t, *later)
        container.clear()
        with container:
            error_box(e, lg)
        return
    except BaseException:
        await _settle(score_t, info_t, *later)
        raise
    spinner.delete()
    probability, threshold = score.probability, score.threshold
    view = logic.decision_view(score.decision, lg)
    with container:
        ui.label(t("client_title", lg, client_id=client_id)).classes("text-xl font-bold").props(
            "role=heading aria-level=2"
        )
        with ui.element("div").classes("grid grid-cols-1 md:grid-cols-2 gap-4 w-full"):
            with ui.card().classes("w-full").props("data-testid=score-card"):
                with ui.row().classes("items-center gap-3 flex-wrap"):
                    with (
                        ui.row()
                        .classes("items-center gap-2 px-3 py-2 rounded text-lg font-bold")
                        .style(f"color:{view['fg']};background:{view['bg']};border:2px solid {view['fg']}")
                        .props(f"data-testid=decision data-decision={view['key']}")
                    ):
                        ui.icon(view["icon"], size="md").props('aria-hidden="true"')
                        ui.label(
                            f"{t('decision', lg)} : {view['text']}"
                            if lg == "fr"
                            else f"{t('decision', lg)}: {view['text']}"
                        )
                    ui.label(f"{t('probability', lg)} : {logic.fmt_prob(probability, lg)}").classes("text-lg").props(
                        f"data-testid=probability data-value={probability!r}"
                    )
                chart(
                    logic.gauge_option(probability, threshold, lg),
                    logic.gauge_caption(probability, threshold, score.decision, lg),
                    "h-56",
                )
                with ui.column().classes("gap-0 text-sm").style("color:#374151"):
                    ui.label(f"{t('threshold', lg)} : {logic.fmt_prob(threshold, lg)}")
                    model_id = score.model_id
                    ui.label(f"{t('model_id', lg)} : {model_id[:12]}").props(f'title="{model_id}" data-testid=model-id')
                    letter_links(str(score.request_id or ""), lg)  # the decision letter (ui/pages/letter.py)
                    ui.label(f"{t('completeness', lg)} : {logic.fmt_prob(score.completeness, lg)}")
            with ui.card().classes("w-full"):
                ui.label(t("fields", lg)).classes("text-lg font-bold").props("role=heading aria-level=3")
                fields = info.fields
                rows = logic.client_rows(fields, lg)
                ui.table(
                    columns=[
                        {"name": "field", "label": t("field", lg), "field": "field", "align": "left"},
                        {"name": "value", "label": t("value", lg), "field": "value", "align": "right"},
                    ],
                    rows=rows,
                    row_key="key",
                    pagination={"rowsPerPage": 0},
                ).props("dense flat hide-bottom wrap-cells data-testid=client-fields").classes("w-full").mark(
                    "client-fields"
                )
        with ui.tabs().classes("w-full").props("align=left outside-arrows mobile-arrows") as tabs:
            tab_explain = ui.tab("explain", label=t("tab_explain", lg), icon="insights")
            ui.tab("compare", label=t("tab_compare", lg), icon="bar_chart")
            ui.tab("whatif", label=t("tab_whatif", lg), icon="tune")
        with ui.tab_panels(tabs, value=tab_explain).classes("w-full bg-transparent"):
            with ui.tab_panel("explain").classes("p-0 pt-2"):
                explain_box = ui.column().classes("w-full")
            with ui.tab_panel("compare").classes("p-0 pt-2"):
                compare_box = ui.column().classes("w-full")
            with ui.tab_panel("whatif").classes("p-0 pt-2"):
                whatif_box = ui.column().classes("w-full")
    await fill_explanation(explain_box, explain_t, lg)
    try:
        model, features = await asyncio.gather(model_t, features_t)
    except ApiError as e:
        await _settle(model_t, features_t, application_t)
        for box in (compare_box, whatif_box):
            with box:
                error_box(e, lg)
        return
    model = msgspec.to_builtins(model)  # the manifest's optional parts, as the API writes them
    await fill_whatif(whatif_box, client_id, features, model, probability, lg, application=await application_t)
    await fill_comparison(compare_box, client_id, features, model, lg)


async def _application_or_empty(client_id: int) -> dict:
    try:
        return await api().application(client_id)
    except ApiError:
        return {}  # a database without the Home Credit tables: the what-if edits model features directly


async def fill_explanation(box: ui.column, explanation_task: asyncio.Task, lg: str) -> None:
    with box:
        try:
            explanation = await explanation_task
        except ApiError as e:
            error_box(e, lg)
            return
        with ui.card().classes("w-full"):
            ui.label(t("explain_title", lg)).classes("text-lg font-bold").props("role=heading aria-level=3")
            data = logic.waterfall_data(msgspec.to_builtins(explanation), lg)
            waterfall = chart(logic.waterfall_option(data, lg), logic.waterfall_caption(data, lg), "h-96")
            waterfall.style(f"height:{logic.waterfall_rows_height(data)}px")
            if explanation.reasons:
                ui.label(t("reasons", lg)).classes("font-bold mt-2").props("role=heading aria-level=4")
                with ui.element("ul").classes("list-disc pl-6").props("data-testid=reasons"):
                    for r in explanation.reasons:
                        with ui.element("li"):
                            ui.label(r.sentence)


async def whatif_source(client_id: int, features: dict, model: dict, raw: dict | None = None):
    """(names, base values, hint key, score(edits) coroutine): raw application columns when the API has
    them (derived features are recomputed server-side), else the model's most important features."""
    if raw is None:
        raw = await _application_or_empty(client_id)
    names = [c for c in WHATIF_COLUMNS if c in raw]
    if names:
        base = {n: logic.whatif_shown(n, raw[n]) for n in names}  # in the client panel's units (years, euros)

        async def score_raw(edits: dict) -> dict:
            changes = {n: logic.whatif_raw(n, v, raw[n]) for n, v in edits.items() if v != base[n]}
            return await api().what_if(client_id, changes)

        return names, base, "whatif_hint_raw", score_raw
    names = [f for f in logic.top_features(model, 50) if f in features][:WHATIF_FEATURES] or list(features)[
        :WHATIF_FEATURES
    ]

    async def score_features(edits: dict) -> dict:
        return await api().score_features(logic.whatif_features(features, edits))

    return names, {n: features.get(n) for n in names}, "whatif_hint", score_features


async def fill_whatif(
    box: ui.column,
    client_id: int,
    features: dict,
    model: dict,
    probability: float,
    lg: str,
    application: dict | None = None,
) -> None:
    names, base, hint, score = await whatif_source(client_id, features, model, application)
    edits: dict[str, float | None] = dict(base)
    state = {"seq": 0}
    with box, ui.card().classes("w-full"):
        ui.label(t("whatif_title", lg)).classes("text-lg font-bold").props("role=heading aria-level=3")
        ui.label(t(hint, lg)).classes("text-sm").style("color:#374151")
        inputs: dict[str, ui.input] = {}
        shown: dict[str, str] = {}  # each input's first text: left as it is, it stands for the exact stored value
        with ui.element("div").classes("grid grid-cols-1 sm:grid-cols-2 lg:grid-cols-3 gap-3 w-full"):
            for i, name in enumerate(names):
                label = feature_label(name, lg) + (f" ({t('years', lg)})" if name.startswith("DAYS_") else "")
                value = base[name]
                shown[name] = "" if value is None else locale.number(value, lg, logic.whatif_digits(name))
                inputs[name] = (
                    ui.input(label, value=shown[name])
                    .props("outlined dense inputmode=decimal")
                    .props(f'aria-label="{_attr(t("whatif_input_aria", lg, feature=label))}"')
                    .props(f"data-testid=whatif-{i} data-feature={name}")
                    .mark(f"whatif-{name}")
                    .classes("w-full")
                )
        with ui.row().classes("items-center gap-3 flex-wrap"):
            result = (
                ui.label(logic.fmt_prob(probability, lg))
                .classes("text-lg font-bold")
                .props("aria-live=polite data-testid=whatif-result")
                .mark("whatif-result")
            )
            reset = ui.button(t("whatif_reset", lg), icon="restart_alt").props("outline")
        recomputed = ui.label("").classes("text-sm").style("color:#374151").props("data-testid=whatif-recomputed")

    async def rescore(e=None) -> None:
        state["seq"] += 1
        seq = state["seq"]
        if e is not None:  # typing: score once the user pauses (each score is logged by the API)
            await asyncio.sleep(DEBOUNCE_S)
            if seq != state["seq"]:
                return
        for n, el in inputs.items():
            try:
                edits[n] = base[n] if el.value == shown[n] else locale.parse_number(el.value, lg)
            except ValueError:
                result.set_text(t("whatif_not_a_number", lg, feature=feature_label(n, lg)))
                return
        try:
            out = await score(edits)
        except ApiError as e:
            result.set_text(e.message(lg))
            return
        if seq != state["seq"]:
            return  # a newer edit is being scored
        p = out.probability
        view = logic.decision_view(out.decision, lg)
        result.set_text(
            t(
                "whatif_result",
                lg,
                probability=logic.fmt_prob(p, lg),
                delta=locale.points(p - probability, lg),
                decision=view["text"],
            )
        )
        result.style(f"color:{view['fg']}")
        result.props(f"data-value={p!r} data-decision={view['key']}")
        derived = [feature_label(n, lg) for n in getattr(out, "changed_features", {}) if n not in inputs]
        recomputed.set_text(t("whatif_recomputed", lg, features=", ".join(derived[:8])) if derived else "")

    def do_reset() -> None:
        for n, el in inputs.items():
            el.value = shown[n]

    for el in inputs.values():
        el.on_value_change(rescore)
    reset.on_click(do_reset)
    await rescore()


async def fill_comparison(box: ui.column, client_id: int, features: dict, model: dict, lg: str) -> None:
    all_names = [f for f in (document_manifest(model).features or list(features)) if f in features] or list(features)
    chosen = [f for f in logic.top_features(model, 20) if f in features][:COMPARE_DEFAULT] or all_names[
        :COMPARE_DEFAULT
    ]
    with box, ui.card().classes("w-full"):
        ui.label(t("compare_title", lg)).classes("text-lg font-bold").props("role=heading aria-level=3")
        select = (
            ui.select(
                {n: feature_label(n, lg) for n in all_names},
                value=chosen,
                multiple=True,
                label=t("compare_features", lg),
                with_input=True,
            )
            .props(f'outlined dense use-chips aria-label="{_attr(t("compare_features_aria", lg))}"')
            .props("data-testid=compare-select")
            .classes("w-full")
        )
        charts = ui.column().classes("w-full gap-4")

    async def render(_=None) -> None:
        names = [n for n in (select.value or []) if n in features][:8]
        charts.clear()
        if not names:
            return
        try:
            payload = await api().population(names, limit=POPULATION_LIMIT)
        except ApiError as e:
            with charts:
                error_box(e, lg)
            return
        ids, X, decisions = logic.population_table(payload, names)
        if X.shape[0] == 0:
            with charts:
                ui.label(t("no_data", lg))
            return
        x = np.array([logic._num(features.get(n)) for n in names])
        near = logic.nearest_neighbours(X, x, NEIGHBOURS, exclude=ids == client_id)
        with charts:
            with ui.element("div").classes("grid grid-cols-1 lg:grid-cols-2 gap-4 w-full"):
                for j, name in enumerate(names):
                    value = features.get(name)
                    cmp = logic.comparison(name, X[:, j], decisions, near, None if value is None else float(value), lg)
                    with ui.column().classes("w-full gap-1").props("data-testid=compare-chart"):
                        ui.label(feature_label(name, lg)).classes("font-bold").props("role=heading aria-level=4")
                        chart(cmp["option"], cmp["caption"], "h-72")
            ui.label(t("neighbours_title", lg, k=len(near))).classes("font-bold").props("role=heading aria-level=4")
            ui.label(t("neighbours_caption", lg)).classes("text-sm").style("color:#374151")
            cols = [{"name": "id", "label": "ID", "field": "id", "align": "left"}]
            cols.append({"name": "decision", "label": t("decision", lg), "field": "decision", "align": "left"})
            cols += [
                {"name": f"f{j}", "label": feature_label(n, lg), "field": f"f{j}", "align": "right"}
                for j, n in enumerate(names)
            ]
            rows = []
            for i in near:
                row = {"id": int(ids[i]), "decision": t(decisions[i], lg)}
                for j in range(len(names)):
                    v = X[i, j]
                    row[f"f{j}"] = logic.fmt_value(None if not math.isfinite(v) else float(v), lg)
                rows.append(row)
            ui.table(columns=cols, rows=rows, row_key="id", pagination={"rowsPerPage": 0}).props(
                "dense flat wrap-cells hide-bottom"
            ).classes("w-full")

    select.on_value_change(render)
    await render()
