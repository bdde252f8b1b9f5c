"""Several accelerator instances: the cycle models of what connects them.

:mod:`.link` -- a credit-flow link between two instances; :mod:`.arbiter` -- instances sharing
one host port; :mod:`.traffic` -- the transfers and receiver patterns both take. Each model is
exact: it equals its Component in :mod:`hwaccel.generators.link` cycle for cycle.
:mod:`.dp` -- data parallelism (the batch split over instances; ``hwaccel parallel --mode dp``).
:mod:`.pp` -- pipeline parallelism (layers in stages on the instances of
:mod:`hwaccel.generators.multi`'s top; :mod:`.pp_model` the controller and its exact cycle
model, :mod:`.pp_sim` the simulated top, :mod:`.pp_run` ``hwaccel parallel --mode pp``,
:mod:`.pp_equal` a synthetic pipeline of equal stages that meets GPipe's bubble law).
:mod:`.tp` -- tensor parallelism (each layer's channels, or a Linear's reduction with int32
partial sums, over a ring of instances; :mod:`.tp_layers` the shares, :mod:`.tp_sim` the ring
and its closed form, :mod:`.tp_rtl` shares on the RTL, :mod:`.tp_run` ``--mode tp``);
:mod:`.hybrid` -- pipeline stages that are tp groups (``--mode hybrid``); :mod:`.hybrid_dp`
-- of dp groups (``--dp-size``), their lanes on one shared host port with :mod:`.hybrid_dp_port`.
:mod:`.plots` -- ``--plot``'s PNGs; :mod:`.hardware` -- a preset's placed Fmax and DSPs for them.
"""
