"""What tasks add to the leaderboard and the CLI is declared on the tasks and found through the
registry: the declarations resolve, come in their declared order, and stay out of the records."""

from __future__ import annotations

from sae_bench import MetricSpec
from sae_bench.leaderboard_build import views


def test_every_declared_section_and_figure_resolves_to_a_function():
    declared = views.declared("page_sections") + views.declared("row_plots")
    assert {task for task, _ in declared} >= {"probing", "maxact_repro", "absorption", "sparse_probing",
                                              "autointerp", "sparsity", "spliced_loss"}
    for task, item in declared:
        function = views.resolve(getattr(item, "render", None) or item.draw)
        assert callable(function), (task, item)
    orders = [item.order for _, item in views.declared("page_sections")]
    assert orders == sorted(orders)


def test_frontier_and_depth_panels_come_from_the_metric_specs_in_their_order():
    assert views.flagged_metrics("frontier")[:3] == ("fvu", "ce_loss_recovered", "kl_score")
    assert views.flagged_metrics("depth") == ("fvu", "ce_loss_recovered", "kl_score", "l0")


def test_presentation_flags_stay_out_of_records_and_comparisons():
    shown = MetricSpec("m", "higher", "a metric", frontier=3, depth=1)
    plain = MetricSpec("m", "higher", "a metric")
    assert "frontier" not in shown.to_json() and "depth" not in shown.to_json()
    assert shown.to_json() == plain.to_json() and shown == plain  # records and the gate see the same spec


def test_resolve_takes_a_function_or_a_module_path():
    assert views.resolve(len) is len
    assert views.resolve("os.path:join") is __import__("os").path.join
