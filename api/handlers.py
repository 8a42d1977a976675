"""What each endpoint does, independent of how BentoML wires it.

`FaceApi` gets the detector and embedder as async callables (in the service
they are batched BentoML dependencies; in a script they can be the bare
models), so the request logic is written once and reads top to bottom:
decode → detect → align → embed → gallery. CPU work that is not batched
(decoding, alignment, gallery calls) runs in threads so the event loop keeps
accepting requests and feeding the batchers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import numpy as np

from api.auth import Key
from api.deadline import commit_before_write
from api.decisions import SECURITY_LEVELS, FaceDecision, Policy, decide, policy, without_rejected
from api.errors import ApiError, no_face, not_found, several_faces
from api.health import health_report
from api.inputs import image_bytes
from api.pixel_budget import PixelBudget, PixelBudgetExhausted
from faceserve import schemas
from faceserve.limits import DEFAULT_TOP_K, MAX_BATCH_ITEMS, MAX_HEALTH_FACES, MAX_TRANSFER_PAGE
from models.calibration import Calibration
from models.faces import LANDMARK_NAMES, DetectedFace
from models.imaging import DecodedImage, ImageError, ImageLimits, decode_cost, decode_image
from models.pipeline import AnalysisFailed, DetectFn, EmbedFn, FacePipeline
from models.quality import Quality
from models.registry import ModelEntry, distance
from qdrant import Conflict, Gallery, ImportedPerson, InvalidInput, NewFace, Person, PersonMatch, StoredFace
from qdrant.domain import NEGATIVE, PersonVectors

# Face ids derived from a client's request id make a retried enrolment overwrite, not duplicate.
REQUEST_ID_NAMESPACE = uuid.UUID("0e6c1a52-2a55-4c41-9d83-4f8f7b0c3c11")

T = TypeVar("T")


@dataclass(frozen=True)
class Decoded:
    image: DecodedImage
    sha256: str

    @property
    def size(self) -> schemas.ImageSize:
        return schemas.ImageSize(width=self.image.width, height=self.image.height)


@dataclass(frozen=True)
class Analysed:
    """One image's faces (largest first, capped), when asked for their vectors, and their measured quality."""

    image: Decoded
    faces: list[DetectedFace]
    vectors: np.ndarray
    qualities: list[Quality]

    def out(self, index: int, level: schemas.QualityLevel) -> schemas.Face:
        return face_out(self.faces[index], self.qualities[index], level)


class FaceApi:
    """The request logic: each method takes the caller's key and a request model the edge has validated."""

    def __init__(
        self,
        detect: DetectFn,
        embed: EmbedFn,
        spec: ModelEntry,
        gallery: Gallery,
        limits: ImageLimits,
        max_faces: int,
        max_request_bytes: int,
        decode_budget: PixelBudget,
        calibration: Calibration | None,
        security: schemas.Security,
        enroll_quality: schemas.QualityLevel = "medium",
        recognize_quality: schemas.QualityLevel = "low",
    ) -> None:
        self.pipeline = FacePipeline(detect, embed, spec)
        self.decode_budget = decode_budget
        self.calibration = calibration
        self.security: schemas.Security = security
        self.spec = spec
        self.gallery = gallery
        self.limits = limits
        self.max_faces = max_faces
        self.max_request_bytes = max_request_bytes
        # the levels a face must pass to be enrolled, and to be named by recognize (requests may ask for others)
        self.enroll_quality: schemas.QualityLevel = enroll_quality
        self.recognize_quality: schemas.QualityLevel = recognize_quality

    async def decode(self, value: str, field: str = "image") -> Decoded:
        data = image_bytes(value, field)
        try:
            async with self.decode_budget.hold(decode_cost(data, self.limits)):
                image = await anyio.to_thread.run_sync(decode_image, data, self.limits)
        except ImageError as exc:
            raise ApiError.from_image_error(exc, field) from exc
        except PixelBudgetExhausted as exc:
            raise ApiError(
                503, "decoder_busy", f"{field}: {exc}.", headers={"Retry-After": str(exc.retry_after_s)}
            ) from exc
        return Decoded(image, hashlib.sha256(data).hexdigest())

    async def analyse(
        self,
        value: str,
        *,
        field: str = "image",
        max_faces: int | None = None,
        min_confidence: float | None = None,
        embed: bool = True,
    ) -> Analysed:
        image = await self.decode(value, field)
        try:
            found = await self.pipeline.analyse(
                image.image,
                max_faces=min(max_faces or self.max_faces, self.max_faces),
                min_confidence=min_confidence,
                embed=embed,
                quality=True,
            )
        except AnalysisFailed as exc:
            raise ApiError(422, exc.code, f"{field}: {exc.message}") from exc
        return Analysed(image, found.faces, found.vectors, found.qualities or [])

    async def detect(self, key: Key, request: schemas.DetectRequest) -> schemas.DetectResponse:
        key.require_any()
        found = await self.analyse(
            request.image, max_faces=request.max_faces, min_confidence=request.min_confidence, embed=False
        )
        level = request.quality or self.enroll_quality
        return schemas.DetectResponse(
            image=found.image.size, faces=[found.out(i, level) for i in range(len(found.faces))]
        )

    async def embed(self, key: Key, request: schemas.EmbedRequest) -> schemas.EmbedResponse:
        key.require_any()
        found = await self.analyse(request.image, max_faces=request.max_faces)
        level = request.quality or self.enroll_quality
        return schemas.EmbedResponse(
            model=self.spec.model_id,
            dim=self.spec.dim,
            image=found.image.size,
            faces=[
                schemas.EmbeddedFace(**found.out(i, level).model_dump(), embedding=v.tolist())
                for i, v in enumerate(found.vectors)
            ],
        )

    async def verify(self, key: Key, request: schemas.VerifyRequest) -> schemas.VerifyResponse:
        """Largest face of each image; a missing face is a 422 naming the image. One comparison: N = 1."""
        key.require_any()
        security = request.security or self.security
        rule = self.policy(security, 1, request.threshold)
        # concurrently, so both photos ride the same detector and embedder batches
        a, b = await asyncio.gather(
            self.analyse(request.image_a, field="image_a", max_faces=1),
            self.analyse(request.image_b, field="image_b", max_faces=1),
        )
        for found, field in ((a, "image_a"), (b, "image_b")):
            if not found.faces:
                raise no_face(field)
        similarity = float(np.dot(a.vectors[0], b.vectors[0]))
        same = similarity >= rule.threshold
        return schemas.VerifyResponse(
            same_person=same,
            decision="match" if same else "unknown",
            similarity=round(similarity, 5),
            distance=round(distance(similarity), 5),
            threshold=round(rule.threshold, 5),
            security=security,
            calibrated=self.calibration is not None,
            false_accept_probability=_probability(rule.false_accept_probability(similarity)),
            warnings=self.warnings(),
            model=self.spec.model_id,
            face_a=face_out(a.faces[0]),
            face_b=face_out(b.faces[0]),
        )

    def policy(self, security: schemas.Security, comparisons: int, threshold: float | None) -> Policy:
        return policy(self.calibration, self.spec.threshold, security, comparisons, threshold)

    def warnings(self) -> list[str]:
        if self.calibration is not None:
            return []
        return [
            f"uncalibrated: {self.spec.model_id} has no calibration, so matches use a fixed threshold whose "
            "false-match rate is unknown; run scripts/import_models.py with ../shared/faces present to measure it."
        ]

    async def _gallery(self, call: Callable[..., T], *args: Any) -> T:
        """Run a gallery call in a thread; its validation errors are the client's (400), its conflicts 409."""
        try:
            return await anyio.to_thread.run_sync(call, *args)
        except InvalidInput as exc:
            raise ApiError(400, exc.code, exc.message) from exc
        except Conflict as exc:
            raise ApiError(409, exc.code, exc.message) from exc

    async def enroll(self, key: Key, request: schemas.EnrollRequest) -> schemas.EnrollResponse:
        key.require(request.directory, "write")
        return await self._enroll(request)

    async def _enroll(self, request: schemas.EnrollRequest) -> schemas.EnrollResponse:
        """One face per call: with several in the photo the largest is enrolled and the response says so,
        unless `single_face` asks for a refusal (bulk enrolment, where the largest may be someone else).

        The face must pass the quality level (422 low_quality), must not be someone else already enrolled (409
        identity_conflict) and must be like the person's own faces (409 not_same_person): a bad enrolment is
        cheapest to stop here, before it misnames people (see `_check_identity`)."""
        directory, person_id, request_id = request.directory, request.person_id, request.request_id
        found = await self.analyse(request.image)
        if not found.faces:
            raise no_face()
        if request.single_face and len(found.faces) > 1:
            raise several_faces(len(found.faces))
        level = request.quality or self.enroll_quality
        reasons = list(found.qualities[0].reasons(level))
        if reasons:
            raise ApiError(
                422,
                "low_quality",
                f"image: the face is below the '{level}' quality level: {', '.join(reasons)}.",
                details={"reasons": reasons},
            )
        face_id = None
        if request_id is not None:
            face_id = str(uuid.uuid5(REQUEST_ID_NAMESPACE, "\x00".join((directory, person_id, request_id))))
        # a request_id already used is a retry (stored once) or a request_id_conflict: add_faces tells which
        if face_id is None or not await self._gallery(self.gallery.has_face, directory, face_id):
            await self._check_identity(request, found.vectors[0])
        new = NewFace(
            found.vectors[0],
            found.faces[0].box,
            found.faces[0].score,
            found.image.sha256,
            face_id,
            quality=dataclasses.asdict(found.qualities[0]),
        )
        commit_before_write()  # a 504 must mean nothing was stored: see api/deadline.py
        try:
            (stored_id,) = await self._gallery(
                self.gallery.add_faces, directory, person_id, [new], request.name, request.metadata
            )
        except ApiError as exc:
            if exc.code != "face_id_conflict":
                raise
            raise ApiError(
                409,
                "request_id_conflict",
                f"request_id {request_id!r} was already used for another photo in directory '{directory}'; "
                "a retry must send the same photo, a new enrolment a new request_id.",
            ) from exc
        return schemas.EnrollResponse(
            directory=directory,
            person_id=person_id,
            face_id=stored_id,
            face=found.out(0, level),
            faces_detected=len(found.faces),
            largest_selected=len(found.faces) > 1,
            model=self.spec.model_id,
        )

    async def _check_identity(self, request: schemas.EnrollRequest, vector: np.ndarray) -> None:
        """The face must not be recognised as another person, nor fail to be recognised as this one, at the
        request's security level with the thresholds recognition uses: another person over the directory's
        threshold (N = its enrolled faces) is identity_conflict; a best similarity to the person's own faces under
        the threshold for comparing with each of them (N = their face count) is not_same_person."""
        if request.allow_conflict and request.allow_mismatch:
            return
        directory, person_id = request.directory, request.person_id
        security = request.security or self.security

        def look() -> tuple[int, list[PersonMatch], int, float | None]:
            own = self.gallery.count(directory, person_id)
            return (
                self.gallery.count(directory),
                [] if request.allow_conflict else self.gallery.match_persons(directory, vector, DEFAULT_TOP_K),
                own,
                self.gallery.person_similarity(directory, person_id, vector) if own else None,
            )

        enrolled, matches, own, similarity = await self._gallery(look)
        if not request.allow_conflict:
            rule = self.policy(security, enrolled, None)
            other = next((m for m in matches if m.person_id != person_id), None)
            if other is not None and other.similarity >= rule.threshold:
                raise ApiError(
                    409,
                    "identity_conflict",
                    f"image: the face matches person '{other.person_id}' (similarity {other.similarity:.4f}, "
                    f"threshold {rule.threshold:.4f} at '{security}'); send allow_conflict=true if both are right.",
                    details={"person_id": other.person_id, "similarity": round(other.similarity, 5)},
                )
        if not request.allow_mismatch and similarity is not None:
            rule = self.policy(security, own, None)
            if similarity < rule.threshold:
                raise ApiError(
                    409,
                    "not_same_person",
                    f"image: the face does not match person '{person_id}''s {own} enrolled face(s) (best similarity "
                    f"{similarity:.4f}, threshold {rule.threshold:.4f} at '{security}'); send allow_mismatch=true "
                    "if it is them.",
                    details={"person_id": person_id, "similarity": round(similarity, 5)},
                )

    async def enroll_batch(self, key: Key, request: schemas.EnrollBatchRequest) -> schemas.EnrollBatchResponse:
        """Items run concurrently, so their faces share detector and embedder batches; each succeeds or fails alone,
        an item that broke a rule included (it was rejected while the request was validated).

        The key must be allowed to write to every directory named, or nothing runs.
        """
        key.require_any()
        for directory in sorted({i.directory for i in request.items if isinstance(i, schemas.EnrollRequest)}):
            key.require(directory, "write")

        async def one(index: int, item: schemas.EnrollRequest | schemas.RejectedItem) -> schemas.EnrollItemResult:
            if isinstance(item, schemas.RejectedItem):
                return schemas.EnrollItemFailed(index=index, error=item.error)
            try:
                result = await self._enroll(item)
            except ApiError as exc:
                return schemas.EnrollItemFailed(
                    index=index, error=schemas.ErrorBody(code=exc.code, message=exc.message, **exc.details)
                )
            return schemas.EnrollItemSucceeded(index=index, result=result)

        results = await asyncio.gather(*(one(i, item) for i, item in enumerate(request.items)))
        enrolled = sum(r.ok for r in results)
        return schemas.EnrollBatchResponse(enrolled=enrolled, failed=len(results) - enrolled, results=list(results))

    async def recognize(self, key: Key, request: schemas.RecognizeRequest) -> schemas.RecognizeResponse:
        """Every face, each decided against the directory (api/decisions.py); no index rebuild is ever needed."""
        directory = request.directory
        key.require(directory, "read")
        security = request.security or self.security
        top_k = request.top_k or DEFAULT_TOP_K
        level = request.quality or self.recognize_quality
        found = await self.analyse(request.image, max_faces=request.max_faces)

        def search() -> tuple[int, list[list[PersonMatch]]]:
            return self.gallery.count(directory), [
                self.gallery.match_persons(directory, v, top_k, with_negatives=True) for v in found.vectors
            ]

        enrolled, matches = await self._gallery(search)
        rule = self.policy(security, enrolled, request.threshold)
        gated = [bool(q.reasons(level)) for q in found.qualities]
        decisions = decide([without_rejected(m, rule) for m in matches], rule, gated)
        faces = [
            schemas.RecognizedFace(**found.out(i, level).model_dump(), **_decision_out(decision))
            for i, decision in enumerate(decisions)
        ]
        return schemas.RecognizeResponse(
            directory=directory,
            model=self.spec.model_id,
            security=security,
            threshold=round(rule.threshold, 5),
            calibrated=self.calibration is not None,
            enrolled_faces=enrolled,
            warnings=self.warnings(),
            image=found.image.size,
            faces=faces,
        )

    async def list_persons(self, key: Key, request: schemas.ListPersonsRequest) -> schemas.PersonPage:
        key.require(request.directory, "read")
        page, next_offset = await self._gallery(
            self.gallery.list_persons, request.directory, request.limit, request.offset
        )
        return schemas.PersonPage(
            directory=request.directory,
            persons=[
                schemas.PersonSummary(
                    person_id=p.person_id,
                    name=p.name,
                    metadata=p.metadata,
                    face_count=p.face_count,
                    negative_count=p.negative_count,
                )
                for p in page
            ],
            next_offset=next_offset,
        )

    async def get_person(self, key: Key, request: schemas.PersonRequest) -> schemas.Person:
        key.require(request.directory, "read")
        person = await self._gallery(self.gallery.get_person, request.directory, request.person_id)
        return _person(request.directory, request.person_id, person)

    async def reject(self, key: Key, request: schemas.RejectRequest) -> schemas.RejectResponse:
        """ "Not this person": the face (the one `box` overlaps most, else the largest) becomes a negative example
        of the person, so recognition stops naming them for faces like it (api/decisions.without_rejected)."""
        key.require(request.directory, "write")
        found = await self.analyse(request.image)
        if not found.faces:
            raise no_face()
        index = 0 if request.box is None else _overlapping(found.faces, request.box)
        face = found.faces[index]
        new = NewFace(found.vectors[index], face.box, face.score, found.image.sha256)
        commit_before_write()
        stored = await self._gallery(self.gallery.add_negatives, request.directory, request.person_id, [new])
        if stored is None:
            raise not_found(f"person '{request.person_id}' in directory '{request.directory}'")
        return schemas.RejectResponse(
            directory=request.directory,
            person_id=request.person_id,
            face_id=stored[0],
            face=found.out(index, self.recognize_quality),
        )

    async def health(self, key: Key, request: schemas.HealthRequest) -> schemas.HealthResponse:
        """What will cause wrong answers later (api/health.py), at the request's security level: faces that disagree
        with their person (the 1:1 threshold of 'high', measured in BENCHMARKS.md "Directory health"), persons
        confusable at the threshold recognition uses for this directory, and faces below the enrolment quality
        level by their stored measurements. Reads at most MAX_HEALTH_FACES faces."""
        directory = request.directory
        key.require(directory, "read")
        security = request.security or self.security

        def read() -> tuple[int, list[PersonVectors], bool]:
            persons: list[PersonVectors] = []
            faces, offset = 0, 0
            next_offset: int | None = 0
            while next_offset is not None:
                page, next_offset = self.gallery.person_vectors(directory, MAX_TRANSFER_PAGE, offset)
                for person in page:
                    if faces + len(person.face_ids) > MAX_HEALTH_FACES:
                        return self.gallery.count(directory), persons, True
                    persons.append(person)
                    faces += len(person.face_ids)
                offset = next_offset or 0
            return self.gallery.count(directory), persons, any(p.truncated for p in persons)

        enrolled, persons, truncated = await self._gallery(read)
        agreement = self.policy("high", 1, None).threshold
        confusion = self.policy(security, enrolled, None).threshold
        report = await anyio.to_thread.run_sync(
            lambda: health_report(persons, agreement_threshold=agreement, confusion_threshold=confusion)
        )
        return schemas.HealthResponse(
            directory=directory,
            security=security,
            agreement_threshold=round(agreement, 5),
            confusion_threshold=round(confusion, 5),
            quality=self.enroll_quality,
            persons=report.persons,
            faces=report.faces,
            disagreeing=[schemas.DisagreeingFaceOut(**dataclasses.asdict(d)) for d in report.disagreeing],
            confusable=[schemas.ConfusablePairOut(**dataclasses.asdict(c)) for c in report.confusable],
            single_face=list(report.single_face),
            low_quality=_low_quality(persons, self.enroll_quality),
            truncated=truncated,
        )

    async def update_person(self, key: Key, request: schemas.UpdatePersonRequest) -> schemas.Person:
        key.require(request.directory, "write")
        person = await self._gallery(
            self.gallery.update_person, request.directory, request.person_id, request.name, request.metadata
        )
        return _person(request.directory, request.person_id, person)

    async def delete_person(self, key: Key, request: schemas.PersonRequest) -> schemas.Deleted:
        key.require(request.directory, "write")
        return schemas.Deleted(
            deleted_faces=await self._gallery(self.gallery.delete_person, request.directory, request.person_id)
        )

    async def delete_face(self, key: Key, request: schemas.FaceRequest) -> schemas.Deleted:
        key.require(request.directory, "write")
        return schemas.Deleted(
            deleted_faces=await self._gallery(self.gallery.delete_face, request.directory, request.face_id)
        )

    async def delete_directory(self, key: Key, request: schemas.DirectoryRequest) -> schemas.Deleted:
        key.require(request.directory, "write")
        return schemas.Deleted(deleted_faces=await self._gallery(self.gallery.delete_directory, request.directory))

    async def export_faces(self, key: Key, request: schemas.ExportRequest) -> schemas.ExportPage:
        """Write access is required: an export is every enrolled person's biometric vector, not a lookup."""
        key.require(request.directory, "write")
        page, next_cursor = await self._gallery(
            self.gallery.export_faces, request.directory, request.limit, request.cursor
        )
        return schemas.ExportPage(
            directory=request.directory,
            model=self.spec.model_id,
            dim=self.spec.dim,
            faces=[_gallery_face(face, vector) for face, vector in page],
            next_cursor=next_cursor,
        )

    async def import_faces(self, key: Key, request: schemas.ImportRequest) -> schemas.ImportResponse:
        """Vectors of another model would match nothing (or the wrong people), so the model must be ours."""
        key.require(request.directory, "write")
        if request.model != self.spec.model_id:
            raise ApiError(
                409,
                "model_mismatch",
                f"these faces were embedded by {request.model}; this service runs {self.spec.model_id}. "
                "Re-enrol from the photos instead.",
            )
        persons: dict[str, list[schemas.GalleryFace]] = {}
        for face in request.faces:
            persons.setdefault(face.person_id, []).append(face)
        batch = []
        for person_id, group in persons.items():
            faces = [f for f in group if f.kind == "face"]
            batch.append(
                ImportedPerson(
                    person_id,
                    faces[0].name if faces else None,
                    faces[0].metadata if faces else {},
                    [_imported(f) for f in faces],
                    [_imported(f) for f in group if f.kind == NEGATIVE],
                )
            )
        imported = await self._gallery(self.gallery.import_faces, request.directory, batch)
        return schemas.ImportResponse(directory=request.directory, imported_faces=imported, persons=len(batch))

    def info(self) -> schemas.ModelInfo:
        return schemas.ModelInfo(
            model=self.spec.model_id,
            dim=self.spec.dim,
            input_size=self.spec.geometry.size,
            threshold=self.spec.threshold,
            distance_threshold=round(self.spec.distance_threshold, 5),
            calibration=self._calibration_info(),
            security=self.security,
            security_levels=[
                schemas.SecurityLevel(
                    name=name,
                    false_match_rate=rate,
                    thresholds={
                        str(n): round(policy(self.calibration, self.spec.threshold, name, n).threshold, 4)
                        for n in (1, 10, 100, 1000, 10000)
                    },
                )
                for name, rate in SECURITY_LEVELS.items()
            ],
            gallery_backend=self.gallery.backend,
            collection=self.gallery.collection,
            limits=schemas.Limits(
                max_request_bytes=self.max_request_bytes,
                max_image_bytes=self.limits.max_bytes,
                max_image_pixels=self.limits.max_pixels,
                max_faces=self.max_faces,
                max_batch_items=MAX_BATCH_ITEMS,
                max_transfer_faces=MAX_TRANSFER_PAGE,
            ),
        )

    def _calibration_info(self) -> schemas.CalibrationInfo:
        c = self.calibration
        if c is None:
            return schemas.CalibrationInfo(calibrated=False)
        return schemas.CalibrationInfo(
            calibrated=True,
            source=c.source,
            created=c.created,
            identities=c.identities,
            impostor_pairs=c.impostor_pairs,
            ambiguity_margin=c.ambiguity_margin,
        )


def _imported(face: schemas.GalleryFace) -> NewFace:
    return NewFace(
        np.asarray(face.embedding, dtype=np.float32),
        (face.box.x1, face.box.y1, face.box.x2, face.box.y2),
        face.score,
        face.source_sha256,
        face.face_id,
        face.created_at,
    )


def _overlapping(faces: list[DetectedFace], box: schemas.Box) -> int:
    """The face whose box overlaps `box` most (intersection over union); 422 no_face when none overlaps it."""

    def iou(a: tuple[float, float, float, float]) -> float:
        w = min(a[2], box.x2) - max(a[0], box.x1)
        h = min(a[3], box.y2) - max(a[1], box.y1)
        inter = max(w, 0.0) * max(h, 0.0)
        union = (a[2] - a[0]) * (a[3] - a[1]) + (box.x2 - box.x1) * (box.y2 - box.y1) - inter
        return inter / union if union > 0 else 0.0

    overlaps = [iou(f.box) for f in faces]
    best = max(range(len(faces)), key=overlaps.__getitem__)
    if overlaps[best] <= 0:
        raise ApiError(422, "no_face", "box: no face found in the image overlaps it.")
    return best


def _low_quality(persons: list[PersonVectors], level: schemas.QualityLevel) -> list[schemas.LowQualityFaceOut]:
    """Faces whose stored measurements fail `level` today (a face stored without them is not judged)."""
    out = []
    for person in persons:
        for face_id, stored in zip(person.face_ids, person.qualities, strict=False):
            try:
                reasons = Quality(**stored).reasons(level) if stored else ()  # type: ignore[arg-type]
            except TypeError:  # measurements of another version of models/quality: not judged
                reasons = ()
            if reasons:
                out.append(
                    schemas.LowQualityFaceOut(person_id=person.person_id, face_id=face_id, reasons=list(reasons))
                )
    return out


def _probability(p: float | None) -> float | None:
    return None if p is None else float(f"{p:.3g}")


def _decision_out(d: FaceDecision) -> dict[str, Any]:
    return {
        "decision": d.decision,
        "known": d.decision == "match",
        "match": _candidate(d.match) if d.decision == "match" and d.match else None,
        "ambiguous": [_candidate(c) for c in d.tied],
        "candidates": [_candidate(c) for c in d.others],
        "false_accept_probability": _probability(d.false_accept_probability),
        "margin": d.margin,
    }


def _box(box: tuple[float, float, float, float]) -> schemas.Box:
    x1, y1, x2, y2 = box
    return schemas.Box(x1=x1, y1=y1, x2=x2, y2=y2)


def quality_out(quality: Quality, level: schemas.QualityLevel) -> schemas.FaceQuality:
    return schemas.FaceQuality(
        interocular_px=round(quality.interocular_px, 1),
        sharpness=round(quality.sharpness, 3),
        yaw_deg=round(quality.yaw_deg, 1),
        roll_deg=round(quality.roll_deg, 1),
        detection_score=round(quality.detection_score, 5),
        cut_off=quality.cut_off,
        level=level,
        reasons=list(quality.reasons(level)),
    )


def face_out(face: DetectedFace, quality: Quality | None = None, level: schemas.QualityLevel = "none") -> schemas.Face:
    x1, y1, x2, y2 = face.box
    return schemas.Face(
        box=schemas.Box(x1=round(x1, 1), y1=round(y1, 1), x2=round(x2, 1), y2=round(y2, 1)),
        score=round(face.score, 5),
        landmarks=schemas.Landmarks(
            **{
                n: schemas.Point(x=round(x, 1), y=round(y, 1))
                for n, (x, y) in zip(LANDMARK_NAMES, face.landmarks, strict=True)
            }
        ),
        quality=None if quality is None else quality_out(quality, level),
    )


def _candidate(match: PersonMatch) -> schemas.Candidate:
    return schemas.Candidate(
        person_id=match.person_id,
        name=match.name,
        metadata=match.metadata,
        similarity=round(match.similarity, 5),
        distance=round(distance(match.similarity), 5),
        face_id=match.face_id,
        matched_faces=match.matched_faces,
    )


def _person(directory: str, person_id: str, person: Person | None) -> schemas.Person:
    if person is None:
        raise not_found(f"person '{person_id}' in directory '{directory}'")
    return schemas.Person(
        directory=directory,
        person_id=person.person_id,
        name=person.name,
        metadata=person.metadata,
        faces=[_stored_face(f) for f in person.faces],
        negatives=[schemas.NegativeOut(face_id=f.face_id, created_at=f.created_at) for f in person.negatives],
    )


def _gallery_face(face: StoredFace, vector: list[float]) -> schemas.GalleryFace:
    return schemas.GalleryFace(
        face_id=face.face_id,
        person_id=face.person_id,
        name=face.name,
        metadata=face.metadata,
        created_at=face.created_at,
        source_sha256=face.source_sha256,
        box=_box(face.box),
        score=face.score,
        embedding=vector,
        kind=face.kind,
    )


def _stored_face(face: StoredFace) -> schemas.StoredFaceOut:
    return schemas.StoredFaceOut(
        face_id=face.face_id,
        created_at=face.created_at,
        box=_box(face.box),
        score=face.score,
        source_sha256=face.source_sha256,
    )
