"""The adversarially trained baselines of Table 11 (appendix E): L-inf PGD [Madry et al. 2018] and
L2 DDN [Rony et al. 2019] adversarial training, which ``noisetrain.train.adversarial_training``
trains. Like their authors' models they train from scratch, and on the small datasets only."""

from __future__ import annotations

from noisetrain.methods.registry import MethodKind, register_kind

STEP = "noisetrain.train.adversarial_training:AdversarialStep"



def _attack_cost(spec: dict) -> float:
    """Each attack step is an input-gradient pass (docs/speed.md: pgd_at about 31, ddn_at about 76 vanilla steps on a CPU)."""
    return 1.0 + spec["steps"]


register_kind(MethodKind("pgd_at", label=lambda spec: "PGD AT (Madry et al.'s recipe)", step=STEP, from_scratch=True,
                         image_folders=False, paper_model=lambda spec: "madry_pgd_at", step_cost=_attack_cost))
register_kind(MethodKind("ddn_at", label=lambda spec: "DDN AT (Rony et al.'s recipe)", step=STEP, from_scratch=True,
                         image_folders=False, paper_model=lambda spec: "rony_ddn_at", step_cost=_attack_cost))
