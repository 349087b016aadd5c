"""Reading capture rights from the kernel's capability mask."""

from eyes_devine.adapters.host import CAP_NET_RAW, effective_capabilities


def test_cap_eff_mask_is_read_from_proc_status():
    status = "Name:\tpython3\nCapInh:\t0000000000000000\nCapEff:\t0000000000003000\n"
    caps = effective_capabilities(status)
    assert caps & (1 << CAP_NET_RAW)


def test_missing_cap_eff_means_no_capabilities():
    assert effective_capabilities("Name:\tx\n") == 0
