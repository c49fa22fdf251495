"""Plans: workflows of streams, each on its own model, run in parallel where independent.

```python
from llmswitch import Switch
from llmswitch.plans import Plan

plan = Plan.load("examples/plans/offline.yaml")
async with Switch() as switch:
    run = await switch.run_plan(plan, inputs={"feature": "order history"})
    print(run.status, run.total_cost_usd, run.output("endpoints"))
```

See docs/plans.md for the plan file format, the run folder and the cost report.
"""

from llmswitch.plans.check import Prepared, prepare
from llmswitch.plans.errors import (
    BudgetExceededError,
    PlanError,
    RejectedError,
    StepLimitError,
)
from llmswitch.plans.model import InputSpec, OutputSpec, Plan, StreamSpec
from llmswitch.plans.runner import (
    PlanRun,
    Runner,
    open_run,
    resume_plan,
    run_plan,
    start_run,
)
from llmswitch.plans.tools import Toolbox

__all__ = [
    "BudgetExceededError",
    "InputSpec",
    "OutputSpec",
    "Plan",
    "PlanError",
    "PlanRun",
    "Prepared",
    "RejectedError",
    "Runner",
    "StepLimitError",
    "StreamSpec",
    "Toolbox",
    "open_run",
    "prepare",
    "resume_plan",
    "run_plan",
    "start_run",
]
