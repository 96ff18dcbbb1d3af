"""The national ROR FHIR R4 API ("modèle d'exposition 3.0"): mapping to and from the models.

:func:`resources_for` turns entities into ROR-profile resources; :class:`FhirAssembler` turns resources
(an ``$export``'s files, a search's pages, in any order) into entities with the same business
identifiers as CSD. See docs/fhir.md and the mapping table in docs/data-model.md.
"""

from __future__ import annotations

from rorclient.fhir._mapping import FhirAssembler, entities_from_resources, resources_for
from rorclient.fhir._values import FhirMappingError

__all__ = ["FhirAssembler", "FhirMappingError", "entities_from_resources", "resources_for"]
