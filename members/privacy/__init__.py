"""Who sees members' personal data, and how it leaves.

* ``access``: store scoping (managers see their store's members, guides their own
  customers), masked phones, the audited reveal of a full number;
* ``export``: member segments and their CSV export (streamed, masked, audited);
* ``data_rights``: China's PIPL for the member: download everything held about them,
  delete (anonymise) the account.
"""
