"""E-prescription (*ordonnance numérique*, digest §8): the rules of the prescriber and the pharmacy.

* :mod:`.medicines` — the medicines a prescription may name (a demo list kept as data, CIP13/ATC);
* :mod:`.numbers` — the prescription number (check character) and the QR code's payload (a
  secret stored only as a hash);
* :mod:`.rules` — what a prescriber may write, each refusal in French with its field;
* :mod:`.records` — the FHIR resources of a prescription (MedicationRequest per line, the PDF's
  Binary and DocumentReference);
* :mod:`.document` — the printed prescription (PDF with its QR code);
* :mod:`.dispensing` — what a pharmacy may still hand over, and the MedicationDispense.

The FHIR operations that use them are in ``fhir/operations/eprescription.py``.
"""
