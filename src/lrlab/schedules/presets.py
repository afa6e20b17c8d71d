"""Named presets: another library's schedule with its defaults pinned, so `type = "torch-onecycle"`
plus `max_lr` reproduces that library's trace. Keys given next to the preset override it."""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # torch.optim.lr_scheduler.OneCycleLR(opt, max_lr, total_steps) with every default left alone
    # (torch 2.x): pct_start 0.3, div_factor 25, final_div_factor 1e4, cos, momentum 0.95 -> 0.85 -> 0.95
    "torch-onecycle": {
        "type": "onecycle", "peak_frac": 0.3, "div_factor": 25.0, "final_div_factor": 1e4,
        "anneal": "cos", "three_phase": False, "convention": "torch",
        "cycle_momentum": True, "base_momentum": 0.85, "max_momentum": 0.95,
    },
    # fastai Learner.fit_one_cycle(n_epoch, lr_max): pct_start 0.25, div 25, div_final 1e5 (the last
    # LR is lr_max/1e5), cosine phases over progress, moms (0.95, 0.85, 0.95)
    "fastai-onecycle": {
        "type": "onecycle", "peak_frac": 0.25, "div_factor": 25.0, "div_final": 1e5,
        "anneal": "cos", "three_phase": False, "convention": "fastai",
        "cycle_momentum": True, "base_momentum": 0.85, "max_momentum": 0.95,
    },
    # fastai Learner.fit_flat_cos(n_epoch, lr): flat for 75 % of training, cosine to lr/1e5
    "fastai-flat-cos": {"type": "flat_anneal", "flat_frac": 0.75, "anneal": "cos", "final_div_factor": 1e5},
    # torch.optim.lr_scheduler.CyclicLR(opt, base_lr, max_lr) defaults: step_size_up 2000 steps,
    # triangular, momentum cycling 0.9 -> 0.8 -> 0.9
    "torch-cyclic": {
        "type": "cyclic", "up_steps": 2000, "mode": "triangular",
        "cycle_momentum": True, "base_momentum": 0.8, "max_momentum": 0.9,
    },
    # SGDR paper (Loshchilov & Hutter, ICLR 2017, CIFAR runs): T_0 = 10 epochs, T_mult = 2
    "sgdr-paper": {"type": "sgdr", "period_epochs": 10, "t_mult": 2.0},
}  # fmt: skip
