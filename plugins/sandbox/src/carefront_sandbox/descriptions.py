"""What the sandbox hospital's codes mean, in words a patient reads, in English and Spanish.

The English descriptions of service codes are the chargemaster's own (``codes.SERVICE_CODES``, also
what the EHR puts on each line); the Spanish ones are here. The remark codes are the ones the
sandbox's adjudication attaches to adjustments. The portal asks through the
``carefront_code_descriptions`` hook; CARC and group codes are left to the portal's baseline and to
the x12 plugin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from carefront_sdk.models import CodeSystem

from carefront_sandbox.codes import RARC_BUNDLED, RARC_CONTRACT, RARC_INELIGIBLE, RARC_PLAN_DOCUMENTS, SERVICE_CODES

__all__ = ["describe_codes"]

SPANISH_SERVICES: dict[str, str] = {
    "99202": "Consulta, paciente nuevo (breve)",
    "99203": "Consulta, paciente nuevo",
    "99204": "Consulta, paciente nuevo (detallada)",
    "99212": "Consulta (breve)",
    "99213": "Consulta",
    "99214": "Consulta (detallada)",
    "99215": "Consulta (compleja)",
    "99391": "Control del bebé sano, menor de 1 año",
    "99392": "Control del niño sano, de 1 a 4 años",
    "99393": "Control del niño sano, de 5 a 11 años",
    "99394": "Control preventivo, de 12 a 17 años",
    "99395": "Examen físico anual, de 18 a 39 años",
    "99396": "Examen físico anual, de 40 a 64 años",
    "99397": "Examen físico anual, 65 años o más",
    "99283": "Consulta médica en urgencias (moderada)",
    "99284": "Consulta médica en urgencias (grave)",
    "99285": "Consulta médica en urgencias (muy grave)",
    "99291": "Cuidados críticos por un médico, primera hora",
    "99223": "Examen de ingreso al hospital por un médico",
    "99232": "Visita diaria en el hospital por un médico",
    "99233": "Visita diaria en el hospital por un médico (compleja)",
    "99238": "Atención médica el día del alta",
    "90471": "Aplicación de una vacuna (primera inyección)",
    "90686": "Vacuna contra la gripe",
    "90715": "Vacuna contra el tétanos, la difteria y la tos ferina (Tdap)",
    "90707": "Vacuna contra el sarampión, las paperas y la rubéola (MMR)",
    "G0008": "Aplicación de la vacuna contra la gripe (Medicare)",
    "36415": "Extracción de sangre",
    "80048": "Panel metabólico básico (química sanguínea)",
    "80053": "Panel metabólico completo (química sanguínea)",
    "85025": "Hemograma completo",
    "80061": "Panel de colesterol",
    "83036": "Hemoglobina A1c (promedio de azúcar en la sangre)",
    "84443": "Prueba de tiroides (TSH)",
    "81001": "Análisis de orina con microscopio",
    "81002": "Análisis de orina con tira reactiva",
    "87086": "Cultivo de orina",
    "87880": "Prueba rápida de estreptococo",
    "87804": "Prueba rápida de gripe",
    "85610": "Prueba de coagulación de la sangre (PT/INR)",
    "82947": "Prueba de azúcar en la sangre (glucosa)",
    "84484": "Prueba del músculo cardíaco (troponina)",
    "83690": "Prueba de enzima del páncreas (lipasa)",
    "87040": "Hemocultivo",
    "88305": "Tejido examinado por un patólogo",
    "71045": "Radiografía de tórax, una vista",
    "71046": "Radiografía de tórax, dos vistas",
    "73610": "Radiografía de tobillo",
    "73030": "Radiografía de hombro",
    "73090": "Radiografía de antebrazo",
    "72100": "Radiografía de la parte baja de la espalda",
    "70450": "Tomografía de la cabeza",
    "74177": "Tomografía del abdomen y la pelvis con contraste",
    "70551": "Resonancia magnética del cerebro",
    "73721": "Resonancia magnética de la rodilla",
    "76700": "Ecografía del abdomen",
    "77067": "Mamografía de detección",
    "93000": "Prueba del ritmo cardíaco (electrocardiograma)",
    "93306": "Ecografía del corazón (ecocardiograma)",
    "Q9967": "Medio de contraste para imágenes, por ml",
    "12001": "Puntos para una herida pequeña",
    "10060": "Drenaje de un absceso en la piel",
    "11102": "Biopsia de piel",
    "17110": "Eliminación de verrugas",
    "20610": "Inyección o extracción de líquido de una articulación grande",
    "25600": "Reducción de una fractura de muñeca sin cirugía",
    "29075": "Yeso de antebrazo",
    "96372": "Inyección en un músculo o debajo de la piel",
    "96360": "Suero intravenoso, primera hora",
    "96365": "Infusión intravenosa de un medicamento, primera hora",
    "94640": "Tratamiento respiratorio (nebulizador)",
    "45378": "Colonoscopia",
    "45380": "Colonoscopia con biopsia",
    "43239": "Endoscopia alta con biopsia",
    "29881": "Artroscopia de rodilla para recortar cartílago roto (menisco)",
    "47562": "Extirpación de la vesícula biliar (laparoscópica)",
    "44970": "Extirpación del apéndice (laparoscópica)",
    "00790": "Anestesia para cirugía del abdomen superior",
    "00840": "Anestesia para cirugía del abdomen inferior",
    "00811": "Anestesia para colonoscopia",
    "00731": "Anestesia para endoscopia alta",
    "01400": "Anestesia para cirugía de rodilla",
    "97161": "Evaluación de fisioterapia",
    "97110": "Ejercicio terapéutico, cada 15 minutos",
    "97140": "Terapia manual, cada 15 minutos",
    "J1100": "Inyección de dexametasona (esteroide), por 1 mg",
    "J2405": "Inyección de ondansetrón (contra las náuseas), por 1 mg",
    "J1885": "Inyección de ketorolaco (analgésico), por 15 mg",
    "J0696": "Inyección de ceftriaxona (antibiótico), por 250 mg",
    "J0690": "Inyección de cefazolina (antibiótico), hasta 500 mg",
    "J7030": "Suero salino intravenoso, 1.000 ml",
    "J2270": "Inyección de morfina (para el dolor), hasta 10 mg",
    "J1170": "Inyección de hidromorfona (para el dolor), hasta 4 mg",
    "J3010": "Inyección de fentanilo (para el dolor), 0,1 mg",
    "J2250": "Inyección de midazolam (sedante), por 1 mg",
    "J1644": "Inyección de heparina (anticoagulante), por 1.000 unidades",
    "J1030": "Inyección de metilprednisolona (esteroide), 40 mg",
    "E0114": "Muletas, un par",
    "A4565": "Cabestrillo para el brazo",
    "A0427": "Ambulancia de emergencia, soporte vital avanzado",
    "A0425": "Millaje de ambulancia, por milla",
    "G0378": "Observación en el hospital, por hora",
    "0121": "Habitación semiprivada del hospital, por día",
    "0200": "Unidad de cuidados intensivos (UCI), por día",
    "0250": "Farmacia, otros medicamentos",
    "0258": "Farmacia, soluciones intravenosas",
    "0270": "Suministros médicos y quirúrgicos",
    "0272": "Suministros estériles",
    "0360": "Servicios de quirófano",
    "0370": "Servicios de anestesia (hospital)",
    "0410": "Terapia respiratoria",
    "0420": "Fisioterapia (hospital)",
    "0450": "Servicios de urgencias (hospital)",
    "0710": "Sala de recuperación",
    "0762": "Sala de observación",
}

REMARKS: dict[str, dict[str, str]] = {
    "en": {
        RARC_CONTRACT: "The hospital's contract with your insurer sets how this charge is paid.",
        RARC_BUNDLED: "These services count as parts of one procedure and are paid together.",
        RARC_PLAN_DOCUMENTS: "Your plan's benefit documents explain the limits on this service.",
        RARC_INELIGIBLE: "Your plan says you are not eligible for this service.",
    },
    "es": {
        RARC_CONTRACT: "El contrato del hospital con su aseguradora fija cómo se paga este cargo.",
        RARC_BUNDLED: "Estos servicios cuentan como partes de un mismo procedimiento y se pagan juntos.",
        RARC_PLAN_DOCUMENTS: "Los documentos de beneficios de su plan explican los límites de este servicio.",
        RARC_INELIGIBLE: "Su plan indica que usted no es elegible para este servicio.",
    },
}

_SERVICES: dict[str, dict[str, dict[str, str]]] = {
    "en": {system: {} for system in (CodeSystem.CPT, CodeSystem.HCPCS, CodeSystem.REV)},
    "es": {system: {} for system in (CodeSystem.CPT, CodeSystem.HCPCS, CodeSystem.REV)},
}
for _service in SERVICE_CODES:
    _SERVICES["en"][_service.system][_service.code] = _service.description
    _SERVICES["es"][_service.system][_service.code] = SPANISH_SERVICES[_service.code]


def describe_codes(code_system: str, codes: Sequence[str], language: str) -> Mapping[str, str] | None:
    """The descriptions of the service and remark codes asked for, in ``language`` (English or Spanish)."""
    if code_system == CodeSystem.RARC:
        known = REMARKS.get(language, {})
    else:
        known = _SERVICES.get(language, {}).get(code_system, {})
    return {code: known[code] for code in codes if code in known} or None
